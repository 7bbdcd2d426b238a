"""Campaigns: the list a user may see, a form to set one up, a campaign's delivery report.

Grid leaders and admins create and change campaigns; staff may only look (``add_campaign``
refuses them, so the form is not offered). Who sees what is the store's rule
(``campaigns_visible_to``): an admin everything, a leader the campaigns targeting the areas they
lead (and below) and their own; a campaign outside that answers 403.

The form asks at once what ``/newcampaign`` asks step by step in Telegram, and every answer goes
through the same step of ``bot.telegram.leaders.Leaders`` (its parsers, its checks, its Chinese
messages, its ``new_campaign``), so the two ways of setting up a campaign cannot drift apart.
The desk is built here without a courier: these steps only read and check, they send nothing.
A bad form is shown again, with every problem next to its field and what was typed kept.

A campaign's page lists every push under its summary, a page at a time, filtered by status
(``?status=``, ``?page=``); a filter that makes no sense is dropped with a notice, never an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from bot.dashboard.web import ADMIN, LEADER, Dashboard, Forbidden
from bot.store.accounts import SignedIn
from bot.store.campaigns import SHANGHAI, CampaignMoveError, CampaignView
from bot.store.errors import NotFound
from bot.store.models import DELIVERY_STATUSES
from bot.store.types import utcnow
from bot.telegram.leaders import (
    ACTIONS,
    DEFAULT_BUDGET,
    DEFAULT_LEAD,
    DEFAULT_QUIET,
    Draft,
    InputError,
    Leaders,
    Press,
    Turn,
    Typed,
    labels_of,
)
from campaigns.audience import ALL, AUDIENCES, TagError, name_of, parse_tag
from campaigns.names import STATUS_NAMES

CREATORS = frozenset({ADMIN, LEADER})
MAX_FIELD_CHARS = 4000  # longer than any answer the steps accept: they say what is too long
MAX_CUSTOM_TAGS = 10
RECENT_OCCURRENCES = 20
NEXT_SHOWN = 3
DELIVERY_PAGE_SIZE = 50
MAX_PAGE = 100_000
NOTICES = {
    "created": "活动已创建。",
    "pause": "活动已暂停。",
    "resume": "活动已恢复。",
    "stop": "活动已停止。",
}


@dataclass(frozen=True)
class DeliveryQuery:
    """The delivery table's status filter and page from the query string, and what was dropped."""

    status: str | None
    page: int
    ignored: tuple[str, ...]

    @property
    def offset(self) -> int:
        return (self.page - 1) * DELIVERY_PAGE_SIZE

    def url(self, campaign_id: int, page: int) -> str:
        params = {"status": self.status} if self.status else {}
        return f"/campaigns/{campaign_id}?" + urlencode({**params, "page": str(page)})


def parse_deliveries(status: str, page: str) -> DeliveryQuery:
    """Read ``?status=`` and ``?page=``; a bad value is dropped (and named), never an error."""
    ignored: list[str] = []
    status, page = status.strip()[:40], page.strip()[:40]
    if status and status not in DELIVERY_STATUSES:
        ignored.append("发送状态")
        status = ""
    number = int(page) if page.isascii() and page.isdigit() else 0
    if page and number < 1:
        ignored.append("页码")
    return DeliveryQuery(status or None, min(max(number, 1), MAX_PAGE), tuple(ignored))


@dataclass(frozen=True)
class Row:
    """One campaign in the list, with its area and its deliveries so far."""

    campaign: CampaignView
    area: str
    schedule: str
    audiences: str
    counts: dict[str, int]


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def _texts(form: FormData, key: str) -> list[str]:
    return [v[:MAX_FIELD_CHARS] for v in form.getlist(key) if isinstance(v, str)][:50]


def form_values(form: FormData) -> dict[str, Any]:
    """What was typed and ticked, to fill the form in again."""
    return {
        "name": _text(form, "name"),
        "area_id": _text(form, "area_id"),
        "audiences": _texts(form, "audience"),
        "custom_tags": _text(form, "custom_tags"),
        "content": _text(form, "content") or "template",
        "template_key": _text(form, "template_key"),
        "text": _text(form, "text"),
        "scam_types": _texts(form, "scam_type"),
        "kind": _text(form, "kind"),
        "once_date": _text(form, "once_date"),
        "once_time": _text(form, "once_time"),
        "weekdays": _texts(form, "weekday"),
        "times": _text(form, "times"),
        "lead": _text(form, "lead"),
        "start_date": _text(form, "start_date"),
        "end_date": _text(form, "end_date"),
        "no_quiet": form.get("no_quiet") == "1",
        "quiet_start": _text(form, "quiet_start"),
        "quiet_end": _text(form, "quiet_end"),
        "budget": _text(form, "budget"),
    }


BLANK_FORM: dict[str, Any] = {
    "name": "",
    "area_id": "",
    "audiences": [],
    "custom_tags": "",
    "content": "template",
    "template_key": "",
    "text": "",
    "scam_types": [],
    "kind": "",
    "once_date": "",
    "once_time": "",
    "weekdays": [],
    "times": "",
    "lead": str(DEFAULT_LEAD),
    "start_date": "",
    "end_date": "",
    "no_quiet": False,
    "quiet_start": DEFAULT_QUIET[0],
    "quiet_end": DEFAULT_QUIET[1],
    "budget": str(DEFAULT_BUDGET),
}


class CampaignForm:
    """The form's answers put through the Telegram set-up's steps, in the same order."""

    def __init__(self, desk: Leaders, draft: Draft, values: dict[str, Any]) -> None:
        self.desk = desk
        self.draft = draft
        self.values = values
        self.errors: dict[str, str] = {}
        self.turn = Turn(chat_id=0)  # what a step would say back; nothing is sent

    async def step(self, field: str, run: Callable[[], Awaitable[object]]) -> None:
        if field in self.errors:
            return
        try:
            await run()
        except (InputError, TagError) as exc:
            self.errors[field] = str(exc)

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    async def check(self) -> None:
        desk, draft, v, turn = self.desk, self.draft, self.values, self.turn
        await self.step("name", lambda: desk._on_name(turn, draft, Typed(v["name"]), None))
        if not (v["area_id"].isascii() and v["area_id"].isdigit()):
            self.fail("area", "请选择发给哪个区域的群。")
        await self.step("area", lambda: desk._on_area(turn, draft, Press(v["area_id"]), None))
        await self.audiences()
        await self.content()
        await self.schedule()
        await self.step("budget", lambda: desk._on_budget(turn, draft, Typed(v["budget"]), None))

    async def audiences(self) -> None:
        desk, draft, v = self.desk, self.draft, self.values
        tags = [t for t in v["audiences"] if t in AUDIENCES or t == ALL]
        typed = [w for w in v["custom_tags"].replace("，", ",").replace("、", ",").split(",")]
        typed = [w.strip() for w in typed if w.strip()]
        if len(typed) > MAX_CUSTOM_TAGS:
            self.fail("audience", f"自定义标签最多 {MAX_CUSTOM_TAGS} 个。")
            return
        try:
            tags += [parse_tag(word) for word in typed]
        except TagError as exc:
            self.fail("audience", str(exc))
            return
        for tag in tags:
            Leaders._toggle_audience(draft, tag, on=True)
        await self.step(
            "audience", lambda: desk._on_audience(self.turn, draft, Press("done"), None)
        )

    async def content(self) -> None:
        desk, draft, v, turn = self.desk, self.draft, self.values, self.turn
        if v["content"] == "own":
            await self.step("text", lambda: desk._on_own_text(turn, draft, Typed(v["text"]), None))
        else:
            draft.choices = list(desk.templates())
            key = v["template_key"]
            if not key:
                self.fail("template", "请选一个模板，或者选“自己写”。")
                return
            index = str(draft.choices.index(key)) if key in draft.choices else "x"
            await self.step("template", lambda: desk._on_content(turn, draft, Press(index), None))
        chosen = [code for code in v["scam_types"] if code in desk.taxonomy.scam_codes]
        if len(chosen) != len(v["scam_types"]):
            self.fail("scam_types", "有不认识的诈骗类型，请重新勾选。")
        if chosen:  # ticked types win over the template's own
            draft.scam_types = list(dict.fromkeys(chosen))

    async def schedule(self) -> None:
        desk, draft, v, turn = self.desk, self.draft, self.values, self.turn
        kind = v["kind"]
        if not kind:
            self.fail("kind", "请选择发送方式。")
            return
        await self.step("kind", lambda: desk._on_kind(turn, draft, Press(kind), None))
        if "kind" in self.errors:
            return
        if kind == "once":
            if not v["once_date"] or not v["once_time"]:
                self.fail("once", "请填写发送的日期和时间。")
                return
            when = Typed(f"{v['once_date']} {v['once_time']}")
            await self.step("once", lambda: desk._on_once_at(turn, draft, when, None))
        else:
            if kind == "recurring":
                await self.weekdays_and_times()
            else:
                await self.step(
                    "scam_types", lambda: desk._on_peak_types(turn, draft, Press("done"), None)
                )
                await self.step("lead", lambda: desk._on_lead(turn, draft, Typed(v["lead"]), None))
            await self.dates()
        if kind == "once" and draft.once_at is None:
            return  # the quiet hours are checked against the time, which is not known
        if v["no_quiet"]:
            quiet: Press | Typed = Press("none")
        else:
            quiet = Typed(f"{v['quiet_start']}-{v['quiet_end']}")
        await self.step("quiet", lambda: desk._on_quiet(turn, draft, quiet, None))

    async def weekdays_and_times(self) -> None:
        desk, draft, v, turn = self.desk, self.draft, self.values, self.turn
        days = {int(d) for d in v["weekdays"] if d.isascii() and d.isdigit() and int(d) <= 6}
        if len(days) != len(set(v["weekdays"])):
            self.fail("weekdays", "星期几选得不对，请重新勾选。")
        draft.weekdays = sorted(days)
        await self.step("weekdays", lambda: desk._on_weekdays(turn, draft, Press("done"), None))
        await self.step("times", lambda: desk._on_times(turn, draft, Typed(v["times"]), None))

    async def dates(self) -> None:
        desk, draft, v, turn = self.desk, self.draft, self.values, self.turn
        start, end = v["start_date"].strip(), v["end_date"].strip()
        if not start and not end:
            answer: Press | Typed = Press("default")
        else:
            today = desk.clock().astimezone(SHANGHAI).date().isoformat()
            answer = Typed(f"{start or today} 到 {end}" if end else start)
        await self.step("dates", lambda: desk._on_dates(turn, draft, answer, None))


def routes(dash: Dashboard) -> list[BaseRoute]:
    # The Telegram desk's campaign logic, without its Telegram side (it is given no courier).
    desk = Leaders(dash.store, None, dash.taxonomy)  # type: ignore[arg-type]

    def visible(me: SignedIn, campaign_id: int) -> bool:
        return any(c.id == campaign_id for c in dash.store.campaigns_visible_to(me.user.id))

    def list_rows(me: SignedIn) -> list[Row]:
        every = dash.store.areas()
        labels = labels_of(every, every)
        return [
            Row(
                campaign=c,
                area=labels.get(c.area_id, ""),
                schedule=desk.describe_schedule(c),
                audiences="、".join(name_of(t) for t in c.audience_tags) or "全体居民",
                counts=dash.store.delivery_counts(c.id),
            )
            for c in dash.store.campaigns_visible_to(me.user.id)
        ]

    async def campaign_list(request: Request, me: SignedIn) -> Response:
        rows = await dash.call(list_rows, me)
        return dash.render(
            request,
            "campaigns.html",
            me,
            rows=rows,
            can_create=me.user.role in CREATORS,
        )

    async def form_page(
        request: Request,
        me: SignedIn,
        values: dict[str, Any],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> Response:
        reach, labels = await desk.reach_of(me.user)
        templates = sorted(desk.templates().values(), key=lambda t: t.title)
        scam_types = [(code, dash.scam_name(code)) for code in dash.taxonomy.scam_codes]
        return dash.render(
            request,
            "campaign_new.html",
            me,
            status_code=status_code,
            form=values,
            errors=errors,
            areas=list(labels.items()),
            no_areas=reach is not None and not reach,
            templates=templates,
            scam_types=scam_types,
        )

    async def new(request: Request, me: SignedIn) -> Response:
        return await form_page(request, me, dict(BLANK_FORM), {})

    async def create(request: Request, me: SignedIn) -> Response:
        values = form_values(await dash.form(request))
        reach, labels = await desk.reach_of(me.user)
        draft = Draft(user_id=me.user.id, reach=reach, labels=labels)
        checked = CampaignForm(desk, draft, values)
        await checked.check()
        if not checked.errors:
            try:
                created = await dash.call(
                    dash.store.add_campaign, desk.new_campaign(draft), me.user.id
                )
            except PermissionError:
                checked.fail("area", "您不是这个区域的网格长，请选您负责的区域。")
            except ValueError as exc:
                checked.fail("form", f"活动没有创建：{exc}")
            else:
                return RedirectResponse(f"/campaigns/{created.id}?notice=created", 303)
        return await form_page(request, me, values, checked.errors, status_code=400)

    def report_of(campaign_id: int) -> dict[str, Any]:
        report = dash.store.campaign_report(campaign_id, occurrences=RECENT_OCCURRENCES)
        campaign = report.campaign
        upcoming = desk.next_times(campaign, NEXT_SHOWN) if campaign.status == "active" else []
        template = desk.templates().get(campaign.template_key or "")
        return {
            "report": report,
            "campaign": campaign,
            "area": dash.store.area_label(campaign.area_id),
            "schedule": desk.describe_schedule(campaign),
            "audiences": "、".join(name_of(t) for t in campaign.audience_tags) or "全体居民",
            "upcoming": upcoming,
            "template_title": template.title if template else campaign.template_key,
        }

    async def detail(request: Request, me: SignedIn) -> Response:
        campaign_id = request.path_params["campaign_id"]
        if await dash.call(dash.store.get_campaign, campaign_id) is None:
            return dash.error(request, me, 404, f"没有编号为 {campaign_id} 的活动。")
        if not await dash.call(visible, me, campaign_id):
            raise Forbidden("这个活动不在您负责的区域，不能查看。")
        context = await dash.call(report_of, campaign_id)
        query = request.query_params
        asked = parse_deliveries(query.get("status", ""), query.get("page", ""))
        deliveries, total = await dash.call(
            dash.store.campaign_deliveries,
            campaign_id,
            status=asked.status,
            limit=DELIVERY_PAGE_SIZE,
            offset=asked.offset,
        )
        pages = max(1, -(-total // DELIVERY_PAGE_SIZE))
        status = context["campaign"].status
        actions = [
            (action, title)
            for action, (title, sources, _to) in ACTIONS.items()
            if status in sources
        ]
        notices = [NOTICES.get(query.get("notice", ""), "")]
        if asked.ignored:
            notices.append(f"以下筛选条件无效，已忽略：{'、'.join(asked.ignored)}。")
        return dash.render(
            request,
            "campaign.html",
            me,
            notice=" ".join(n for n in notices if n),
            actions=actions if me.user.role in CREATORS else [],
            deliveries=deliveries,
            deliveries_total=total,
            delivery_status=asked.status or "",
            page=asked.page,
            pages=pages,
            # past the last page (a stale link): back goes to the last page there is
            prev_url=asked.url(campaign_id, min(asked.page - 1, pages)) if asked.page > 1 else "",
            next_url=asked.url(campaign_id, asked.page + 1) if asked.page < pages else "",
            **context,
        )

    async def change_status(request: Request, me: SignedIn) -> Response:
        campaign_id = request.path_params["campaign_id"]
        action = _text(await dash.form(request), "action")
        if action not in ACTIONS:
            return dash.error(request, me, 400, "请选择暂停、恢复或停止。")
        campaign = await dash.call(dash.store.get_campaign, campaign_id)
        if campaign is None:
            return dash.error(request, me, 404, f"没有编号为 {campaign_id} 的活动。")
        if not await dash.call(visible, me, campaign_id):
            raise Forbidden("这个活动不在您负责的区域，不能操作。")
        title, _sources, target = ACTIONS[action]
        try:
            await dash.call(dash.store.set_campaign_status, campaign_id, target, dash.actor(me))
        except CampaignMoveError:
            return dash.error(request, me, 409, _move_refusal(campaign, title, target))
        except NotFound:
            return dash.error(request, me, 404, f"没有编号为 {campaign_id} 的活动。")
        return RedirectResponse(f"/campaigns/{campaign_id}?notice={action}", 303)

    return [
        dash.page("/campaigns", campaign_list, name="campaigns"),
        dash.page("/campaigns/new", new, roles=CREATORS, name="campaign_new"),
        dash.page("/campaigns", create, roles=CREATORS, methods=("POST",), name="campaign_add"),
        dash.page("/campaigns/{campaign_id:int}", detail, name="campaign"),
        dash.page(
            "/campaigns/{campaign_id:int}/status",
            change_status,
            roles=CREATORS,
            methods=("POST",),
            name="campaign_status",
        ),
    ]


def _move_refusal(campaign: CampaignView, title: str, target: str) -> str:
    """Why a campaign cannot move, in Chinese (the store's ``CampaignMoveError`` is English)."""
    end = campaign.ends_at
    if target == "active" and end is not None and end <= utcnow():
        day = end.astimezone(SHANGHAI).strftime("%Y-%m-%d")
        return f"活动已在 {day} 结束，不能再恢复。要继续宣传，请新建一个活动。"
    status = STATUS_NAMES.get(campaign.status, campaign.status)
    return f"活动 #{campaign.id} 现在{status}，不能{title}。"


__all__ = ["CREATORS", "CampaignForm", "form_values", "parse_deliveries", "routes"]
