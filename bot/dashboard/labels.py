"""The Chinese words the dashboard shows for the store's codes (statuses, risks, sources, ...).

Codes not listed are shown as they are, so a new code never breaks a page.
"""

from __future__ import annotations

from campaigns.audience import AUDIENCES
from campaigns.names import (
    DELIVERY_NAMES,
    FAIL_NAMES,
    KIND_NAMES,
    OCCURRENCE_NAMES,
    SKIP_NAMES,
    WEEKDAYS,
)
from campaigns.names import STATUS_NAMES as CAMPAIGN_STATUS_NAMES

__all__ = [
    "AUDIENCES",
    "CAMPAIGN_STATUS_NAMES",
    "DELIVERY_NAMES",
    "FAIL_NAMES",
    "INDICATOR_KIND_NAMES",
    "INDICATOR_STATUS_NAMES",
    "KIND_NAMES",
    "OCCURRENCE_NAMES",
    "OVERDUE_NAMES",
    "RISK_NAMES",
    "ROLE_NAMES",
    "SKIP_NAMES",
    "SOURCE_NAMES",
    "STATUS_NAMES",
    "WEEKDAYS",
    "name",
]

STATUS_NAMES = {
    "new": "待处理",
    "assigned": "已分派",
    "in_review": "审核中",
    "confirmed": "确认诈骗",
    "dismissed": "排除",
    "answered": "已答复",
}
RISK_NAMES = {"high": "高", "medium": "中", "low": "低"}
SOURCE_NAMES = {
    "check": "居民询问",
    "report_form": "居民举报",
    "urgent": "紧急求助",
    "group_auto": "群内自动发现",
}
ROLE_NAMES = {"admin": "管理员", "staff": "工作人员", "grid_leader": "网格长"}
INDICATOR_KIND_NAMES = {
    "phone_mobile": "手机号",
    "phone_landline": "固定电话",
    "phone_service": "服务号码",
    "link": "网址",
    "bank_card": "银行卡号",
    "id_number": "身份证号",
    "qq": "QQ号",
    "wechat": "微信号",
    "money": "金额",
    "app": "App",
}
INDICATOR_STATUS_NAMES = {"suspected": "待核实", "confirmed": "已确认", "dismissed": "已排除"}
OVERDUE_NAMES = {"red": "已超时", "yellow": "即将超时", "green": "未超时"}


def name(table: dict[str, str], code: str | None) -> str:
    return "" if code is None else table.get(code, code)
