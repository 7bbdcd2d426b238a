"""The audit log, for administrators: who signed in, revealed an indicator, judged a report,
changed an account, imported cases or launched a campaign, newest first."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from bot.dashboard.web import ADMINS, Dashboard
from bot.store.accounts import SignedIn

PAGE_SIZE = 100
ACTION_NAMES = {
    "login": "登录",
    "login.failed": "密码错误",
    "login.locked": "账号被锁定",
    "logout": "退出",
    "user.password": "设置密码",
    "user.enable": "启用账号",
    "user.disable": "停用账号",
    "user.role": "更改角色",
    "report.transition": "报告状态变更",
    "report.note": "报告备注",
    "indicator.reveal": "查看线索原文",
    "indicator.status": "线索名单变更",
    "report.reveal": "查看报告原文",
    "user.add": "新建账号",
    "leader.add": "指定网格长",
    "nlu.export": "导出训练数据",
    "cases.import": "导入案件",
    "campaign.create": "新建宣传活动",
    "campaign.status": "宣传活动状态变更",
    "group.register": "登记群",
    "group.opt_out": "群退订推送",
    "group.opt_in": "群恢复推送",
    "profile.consent": "居民同意登记年龄段",
    "profile.withdraw": "居民撤回年龄段",
}


def routes(dash: Dashboard) -> list[BaseRoute]:
    async def audit(request: Request, me: SignedIn) -> Response:
        action = request.query_params.get("action", "")[:64] or None
        actor = request.query_params.get("actor", "")[:64] or None
        try:
            page = max(1, min(int(request.query_params.get("page", "1")), 10_000))
        except ValueError:
            page = 1
        entries, total = await dash.call(
            dash.store.audit_entries,
            action=action,
            actor=actor,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        rows = [
            (e, json.dumps(e.details, ensure_ascii=False, sort_keys=True, default=str))
            for e in entries
        ]
        return dash.render(
            request,
            "audit.html",
            me,
            rows=rows,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            action=action or "",
            actor=actor or "",
            action_names=ACTION_NAMES,
        )

    return [dash.page("/audit", audit, roles=ADMINS, name="audit")]
