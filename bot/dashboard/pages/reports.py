"""The review queue and the report page: where residents' reports get a verdict.

Who does what (decided): admins and staff review. They assign a report, confirm it with a scam
type, dismiss it, send it back to review, reveal an indicator's real value, and put indicators on
the confirmed list or take them off it. Grid leaders see the queue and the reports of their own
part of the grid only, and may add notes: a verdict answers the resident in the centre's name
and feeds the list every resident's message is checked against, so verdicts stay with staff.

Every handler loads the report and checks the user's scope itself (a POST too, not only the
page that showed the button). A revealed value is only ever in the body of the one response
that shows it (``no-store``), never in a URL, a redirect or a log line; the store audits it.
Two staff acting on one report at once: the second gets a 409 page, not a wrong status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from bot.dashboard.highlight import flag_phrases, highlight
from bot.dashboard.web import EVERYONE, LEADER, STAFF_ROLES, Dashboard, Forbidden, Handler
from bot.nlp.indicators import PERSONAL_KINDS
from bot.store import workflow
from bot.store.accounts import SignedIn
from bot.store.errors import InvalidTransition, NotFound
from bot.store.models import REPORT_SOURCES, REPORT_STATUSES
from bot.store.review import MAX_NOTE_CHARS, OPEN, SORTS, QueueFilter
from bot.store.views import AreaView, ReportView, UserView

PAGE_SIZE = 50
MAX_PAGE = 100_000
NOTE_MAX = MAX_NOTE_CHARS
MAX_ID = 2**31 - 1  # the databases' integer keys: a bigger number is no report, not an error
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ID = re.compile(r"[0-9]{1,18}")

SORT_NAMES = {"risk": "风险高的在前", "oldest": "最早的在前", "newest": "最新的在前"}
CHAT_KIND_NAMES = {"group": "群聊", "private": "私聊"}
ACTOR_NAMES = {"bot": "机器人", "cli": "命令行"}
#: What the page says after a successful POST (``?done=``): fixed texts, never the user's.
DONE = {
    "assigned": "已分派。",
    "in_review": "已转入审核。",
    "confirmed": "已确认为诈骗。",
    "dismissed": "已排除。",
    "note": "备注已添加。",
    "listed": "已加入已确认名单。",
    "unlisted": "已移出已确认名单，改回待核实。",
}


class _Missing(Exception):
    """No such report (or indicator of it): answered with the 404 page."""


class _BadForm(Exception):
    """A form to fix: the report page again, status 400, with this Chinese message."""

    def __init__(self, message: str, form: str, note: str = "") -> None:
        super().__init__(message)
        self.message, self.form, self.note = message, form, note


@dataclass(frozen=True)
class Queue:
    """The queue's filter from the query string, what to keep in links, and what was ignored."""

    filter: QueueFilter
    page: int
    params: dict[str, str]  # the valid filters, for the form's selections and the pager
    ignored: tuple[str, ...]


def area_labels(areas: list[AreaView]) -> dict[int, str]:
    """Every area's path name (东湖社区/1网格/5幢), from one list of areas: no query per area."""
    by_id = {a.id: a for a in areas}
    names: dict[int, str] = {}
    for area in areas:
        parts, current, seen = [], area, set()
        while current is not None and current.id not in seen:
            seen.add(current.id)
            parts.append(current.name)
            current = by_id.get(current.parent_id) if current.parent_id is not None else None
        names[area.id] = "/".join(reversed(parts))
    return names


def as_id(value: object) -> int | None:
    """A form or query value as a positive number, or ``None`` (ASCII digits only)."""
    return int(value) if isinstance(value, str) and _ID.fullmatch(value) else None


def _day(value: str) -> date | None:
    if not _DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_queue(query: QueryParams, codes: set[str], area_ids: set[int]) -> Queue:
    """Read the queue's filters; a bad value is dropped (and named), never an error."""
    params: dict[str, str] = {}
    ignored: list[str] = []

    def get(key: str) -> str:
        return query.get(key, "").strip()[:40]

    status = get("status") or "open"
    if status == "open":
        statuses: tuple[str, ...] = OPEN
    elif status == "all":
        statuses = ()
    elif status in REPORT_STATUSES:
        statuses = (status,)
    else:
        statuses, status = OPEN, "open"
        ignored.append("状态")
    params["status"] = status
    scam_type = get("type")
    if scam_type and scam_type not in codes:
        ignored.append("类型")
        scam_type = ""
    area = get("area")
    area_id = as_id(area)
    if area and area_id not in area_ids:
        ignored.append("网格")
        area_id = None
    source = get("source")
    if source and source not in REPORT_SOURCES:
        ignored.append("来源")
        source = ""
    days: dict[str, date | None] = {}
    for key, name in (("from", "开始日期"), ("to", "结束日期")):
        days[key] = _day(get(key)) if get(key) else None
        if get(key) and days[key] is None:
            ignored.append(name)
    if days["from"] and days["to"] and days["from"] > days["to"]:
        ignored.append("日期范围（开始晚于结束）")
        days = {"from": None, "to": None}
    sort = get("sort") or "risk"
    if sort not in SORTS:
        ignored.append("排序")
        sort = "risk"
    page_text = get("page") or "1"
    page = as_id(page_text) or 0
    if page < 1:
        ignored.append("页码")
        page = 1
    page = min(page, MAX_PAGE)
    for key, value in (
        ("type", scam_type),
        ("area", str(area_id) if area_id is not None else ""),
        ("source", source),
        ("from", days["from"].isoformat() if days["from"] else ""),
        ("to", days["to"].isoformat() if days["to"] else ""),
    ):
        if value:
            params[key] = value
    params["sort"] = sort
    return Queue(
        QueueFilter(
            statuses=statuses,
            scam_type=scam_type or None,
            area_id=area_id,
            source=source or None,
            date_from=days["from"],
            date_to=days["to"],
            sort=sort,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        ),
        page,
        params,
        tuple(ignored),
    )


def actor_name(actor: str, users: dict[int, UserView]) -> str:
    if actor in ACTOR_NAMES:
        return ACTOR_NAMES[actor]
    user_id = as_id(actor.removeprefix("user:")) if actor.startswith("user:") else None
    if user_id is not None and user_id in users:
        return _user_name(users[user_id])
    return actor


def routes(dash: Dashboard) -> list[BaseRoute]:
    store = dash.store

    def guarded(handler: Handler) -> Handler:
        """404 for a missing report, 409 when someone else moved it first, 400 for a bad form."""

        async def run(request: Request, me: SignedIn) -> Response:
            try:
                return await handler(request, me)
            except _Missing:
                return dash.error(request, me, 404, "没有这条报告（或报告里没有这条线索）。")
            except InvalidTransition:
                report_id = request.path_params.get("report_id")
                return dash.render(
                    request, "_report_conflict.html", me, status_code=409, report_id=report_id
                )
            except _BadForm as bad:
                report = await visible_report(request, me)
                return await report_page(
                    request, me, report, status_code=400, error=bad.message, draft=bad
                )

        return run

    async def visible_report(request: Request, me: SignedIn) -> ReportView:
        report_id = request.path_params["report_id"]
        report = await dash.call(store.get_report, report_id) if report_id <= MAX_ID else None
        if report is None:
            raise _Missing
        scope = dash.visible(me)
        if scope is not None and not await dash.call(store.report_visible, report_id, scope):
            raise Forbidden("这条报告不在您负责的网格内。")
        return report

    async def visible_areas(me: SignedIn) -> tuple[list[AreaView], dict[int, str]]:
        areas = await dash.call(store.areas)
        names = area_labels(areas)
        scope = dash.visible(me)
        return [a for a in areas if scope is None or a.id in scope], names

    # the queue

    async def queue(request: Request, me: SignedIn) -> Response:
        areas, names = await visible_areas(me)
        codes = {t.code for t in dash.taxonomy.types}
        asked = parse_queue(request.query_params, codes, {a.id for a in areas})
        result = await dash.call(store.review_queue, asked.filter, dash.visible(me))
        pages = max(1, -(-result.total // PAGE_SIZE))
        keep = asked.params
        notice = ""
        if asked.ignored:
            notice = f"以下筛选条件无效，已忽略：{'、'.join(asked.ignored)}。"
        return dash.render(
            request,
            "queue.html",
            me,
            items=result.items,
            total=result.total,
            page=asked.page,
            pages=pages,
            params=keep,
            prev_url=_queue_url(keep, asked.page - 1) if asked.page > 1 else "",
            next_url=_queue_url(keep, asked.page + 1) if asked.page < pages else "",
            areas=[(a.id, names.get(a.id, a.name)) for a in areas],
            scam_types=dash.taxonomy.types,
            statuses=REPORT_STATUSES,
            sources=REPORT_SOURCES,
            sort_names=SORT_NAMES,
            notice=notice,
        )

    # the report page

    async def report_page(
        request: Request,
        me: SignedIn,
        report: ReportView,
        *,
        status_code: int = 200,
        error: str = "",
        revealed: dict[int, str] | None = None,
        draft: _BadForm | None = None,
    ) -> Response:
        scope = dash.visible(me)
        area_id = await dash.call(store.report_area_id, report.id)
        area = await dash.call(store.area_label, area_id) if area_id is not None else ""
        chat = await dash.call(store.report_chat, report.id)
        users = {u.id: u for u in await dash.call(store.users)}
        similar = await dash.call(store.similar_reports, report.id, scope)
        notes = await dash.call(store.report_notes, report.id)
        staff = me.user.role in STAFF_ROLES
        moves = workflow.allowed(report.status) if staff else frozenset()
        assignees = await dash.call(store.staff_users) if workflow.ASSIGNED in moves else []
        done = request.query_params.get("done", "")
        return dash.render(
            request,
            "report.html",
            me,
            status_code=status_code,
            report=report,
            message=highlight(report.text_masked, flag_phrases(report.red_flags)),
            flags=_flag_list(report.red_flags),
            area=area,
            # A report without a chat came from a private chat with the bot.
            chat=chat,
            chat_kind=chat.kind if chat is not None else "private",
            chat_kind_names=CHAT_KIND_NAMES,
            assignee=_user_name(users.get(report.assigned_to)),
            reviewer=_user_name(users.get(report.reviewed_by)),
            events=[(e, actor_name(e.actor, users)) for e in report.events],
            notes=notes,
            similar=similar,
            staff=staff,
            is_leader=me.user.role == LEADER,
            moves=moves,
            assignees=assignees,
            scam_types=dash.taxonomy.scam_types,
            revealed=revealed or {},
            personal_kinds=PERSONAL_KINDS,
            error=error,
            draft_form=draft.form if draft else "",
            draft_note=draft.note if draft else "",
            notice=DONE.get(done, "") if not error and revealed is None else "",
            reviewed=report.status in workflow.REVIEWED,
            note_max=NOTE_MAX,
        )

    async def show(request: Request, me: SignedIn) -> Response:
        return await report_page(request, me, await visible_report(request, me))

    async def no_such_report(request: Request, me: SignedIn) -> Response:
        return dash.error(request, me, 404, "没有这条报告。报告编号应是数字。")

    # verdicts

    def _note(form: FormData, which: str) -> str:
        value = form.get("note", "")
        note = value.strip() if isinstance(value, str) else ""
        if len(note) > NOTE_MAX:
            raise _BadForm(
                f"备注最多 {NOTE_MAX} 个字，现在有 {len(note)} 个字，请删减后再提交。", which, note
            )
        return note

    def _done(report_id: int, what: str) -> Response:
        return RedirectResponse(f"/reports/{report_id}?done={what}", status_code=303)

    async def assign(request: Request, me: SignedIn) -> Response:
        report = await visible_report(request, me)
        form = await dash.form(request)
        chosen = as_id(form.get("user_id"))
        staff_ids = {u.id for u in await dash.call(store.staff_users)}
        if chosen not in staff_ids:
            raise _BadForm("请从列表里选择要分派给的工作人员。", "assign")
        await dash.call(
            store.transition, report.id, workflow.ASSIGNED, dash.actor(me), assigned_to=chosen
        )
        return _done(report.id, "assigned")

    async def confirm(request: Request, me: SignedIn) -> Response:
        report = await visible_report(request, me)
        form = await dash.form(request)
        note = _note(form, "confirm")
        code = form.get("scam_type", "")
        if code not in dash.taxonomy.scam_codes:
            raise _BadForm("请选择诈骗类型（列表里的一项）。", "confirm", note)
        listable = {i.id for i in report.indicators if i.kind != "money"}
        chosen = {as_id(value) for value in form.getlist("indicators")}
        if not chosen <= listable:
            raise _BadForm("所选线索不属于这条报告，请刷新页面后再选。", "confirm", note)
        actor = dash.actor(me)
        await dash.call(
            store.transition,
            report.id,
            workflow.CONFIRMED,
            actor,
            note=note or None,
            verdict_scam_type=code,
        )
        for indicator_id in sorted(i for i in chosen if i is not None):
            await dash.call(store.set_indicator_status_by_id, indicator_id, "confirmed", actor)
        return _done(report.id, "confirmed")

    async def dismiss(request: Request, me: SignedIn) -> Response:
        report = await visible_report(request, me)
        note = _note(await dash.form(request), "dismiss")
        await dash.call(
            store.transition, report.id, workflow.DISMISSED, dash.actor(me), note=note or None
        )
        return _done(report.id, "dismissed")

    async def review(request: Request, me: SignedIn) -> Response:
        report = await visible_report(request, me)
        note = _note(await dash.form(request), "review")
        await dash.call(
            store.transition, report.id, workflow.IN_REVIEW, dash.actor(me), note=note or None
        )
        return _done(report.id, "in_review")

    async def add_note(request: Request, me: SignedIn) -> Response:
        report = await visible_report(request, me)
        note = _note(await dash.form(request), "note")
        if not note:
            raise _BadForm("备注不能为空。", "note")
        await dash.call(store.add_note, report.id, me.user.id, note)
        return _done(report.id, "note")

    # indicators

    def _indicator_of(report: ReportView, request: Request) -> int:
        indicator_id = request.path_params["indicator_id"]
        if indicator_id not in {i.id for i in report.indicators}:
            raise _Missing
        return indicator_id

    async def reveal(request: Request, me: SignedIn) -> Response:
        report = await visible_report(request, me)
        indicator_id = _indicator_of(report, request)
        try:
            value = await dash.call(
                store.reveal_indicator, report.id, indicator_id, dash.actor(me)
            )
        except NotFound as exc:
            raise _Missing from exc
        return await report_page(request, me, report, revealed={indicator_id: value})

    async def indicator_status(request: Request, me: SignedIn) -> Response:
        report = await visible_report(request, me)
        indicator_id = _indicator_of(report, request)
        status = (await dash.form(request)).get("status", "")
        if status not in ("confirmed", "suspected"):
            raise _BadForm("线索状态只能是“已确认”或“待核实”。", "indicator")
        await dash.call(store.set_indicator_status_by_id, indicator_id, status, dash.actor(me))
        return _done(report.id, "listed" if status == "confirmed" else "unlisted")

    one = "/reports/{report_id:int}"
    post = ("POST",)
    return [
        dash.page("/reports", guarded(queue), roles=EVERYONE, name="reports"),
        dash.page(one, guarded(show), roles=EVERYONE, name="report"),
        dash.page("/reports/{anything}", no_such_report, roles=EVERYONE),
        dash.page(f"{one}/assign", guarded(assign), roles=STAFF_ROLES, methods=post),
        dash.page(f"{one}/confirm", guarded(confirm), roles=STAFF_ROLES, methods=post),
        dash.page(f"{one}/dismiss", guarded(dismiss), roles=STAFF_ROLES, methods=post),
        dash.page(f"{one}/review", guarded(review), roles=STAFF_ROLES, methods=post),
        dash.page(f"{one}/note", guarded(add_note), roles=EVERYONE, methods=post),
        dash.page(
            f"{one}/indicators/{{indicator_id:int}}/reveal",
            guarded(reveal),
            roles=STAFF_ROLES,
            methods=post,
        ),
        dash.page(
            f"{one}/indicators/{{indicator_id:int}}/status",
            guarded(indicator_status),
            roles=STAFF_ROLES,
            methods=post,
        ),
    ]


def _queue_url(params: dict[str, str], page: int) -> str:
    return "/reports?" + urlencode({**params, "page": str(page)})


def _user_name(user: UserView | None) -> str:
    return "" if user is None else user.display_name or user.username


def _flag_list(red_flags: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The red flags to list: (phrase, scam type code), each once, in the message's order."""
    seen: dict[tuple[str, str], None] = {}
    for flag in red_flags:
        if isinstance(flag, dict) and isinstance(flag.get("phrase"), str):
            seen[(flag["phrase"], str(flag.get("code") or ""))] = None
    return list(seen)


__all__ = ["area_labels", "parse_queue", "routes"]
