"""The indicator list: phones, links and accounts staff have confirmed (or suspect, or cleared).

Everyone signed in may search it (grid leaders read only); staff and admins add an indicator as
confirmed and change one's status. The page shows the masked form only, never the raw value: a
raw value is revealed one at a time, audited, on the report it came from. Search takes a phone
however it was typed (the store normalises it as the extractor does), a link, part of the masked
form or of the note.

An indicator typed in by staff is put through the same finders that read residents' messages
(``canonical_value``), so "138 0013 8000" is stored as the 13800138000 a report would record
and both meet under one hash.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from bot.dashboard import labels
from bot.dashboard.web import STAFF_ROLES, Dashboard, safe_next
from bot.nlp import indicators as ind
from bot.nlp.normalize import normalize_text
from bot.store.accounts import SignedIn
from bot.store.errors import NotFound
from bot.store.models import INDICATOR_STATUSES
from bot.store.repo import APP, INDICATOR_KINDS

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200
MAX_VALUE_CHARS = 300
MAX_NOTE_CHARS = 500
STATUS_FILTERS = (*INDICATOR_STATUSES, "all")
# The kinds in the order the labels list them, any the labels lack at the end.
KINDS = [k for k in labels.INDICATOR_KIND_NAMES if k in INDICATOR_KINDS] + sorted(
    INDICATOR_KINDS - set(labels.INDICATOR_KIND_NAMES)
)
NOTICES = {"added": "已加入确认名单。", "status": "线索状态已更新。"}

# The finder that reads each kind, and the words that make it see a bare id as one (QQ and
# WeChat ids are only taken after their keyword, a bank card after its context).
_FINDERS = {
    ind.PHONE_MOBILE: (ind.find_phones, ""),
    ind.PHONE_LANDLINE: (ind.find_phones, ""),
    ind.PHONE_SERVICE: (ind.find_phones, ""),
    ind.LINK: (ind.find_links, ""),
    ind.BANK_CARD: (ind.find_cards_and_ids, "卡号 "),
    ind.ID_NUMBER: (ind.find_cards_and_ids, ""),
    ind.QQ: (ind.find_accounts, "QQ "),
    ind.WECHAT: (ind.find_accounts, "微信 "),
    ind.MONEY: (ind.find_money, ""),
}


def canonical_value(kind: str, text: str) -> str:
    """The value as the extractor records it; ``ValueError`` (Chinese) if it is not one."""
    if kind not in INDICATOR_KINDS:
        raise ValueError("请选择线索类型。")
    clean = normalize_text(text).strip()
    if not clean:
        raise ValueError("请填写号码、网址或账号。")
    if len(clean) > MAX_VALUE_CHARS:
        raise ValueError(f"内容太长了（{len(clean)} 个字符），最多 {MAX_VALUE_CHARS} 个。")
    if kind == APP:
        return clean
    if kind == ind.MONEY and clean.replace(".", "", 1).isdigit():
        clean += "元"
    finder, prefix = _FINDERS[kind]
    found = {f.value for f in finder(prefix + clean) if f.kind == kind}
    name = labels.name(labels.INDICATOR_KIND_NAMES, kind)
    if len(found) != 1:
        raise ValueError(f"“{name}”里认不出这个值，请只填一个，如手机号 138 0013 8000。")
    return found.pop()


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or "1"), 10_000))
    except ValueError:
        return 1


def routes(dash: Dashboard) -> list[BaseRoute]:
    async def listing(
        request: Request,
        me: SignedIn,
        *,
        problem: str = "",
        added: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        params = request.query_params
        query = params.get("q", "").strip()[:MAX_QUERY_CHARS]
        kind = params.get("kind", "")
        status = params.get("status", "confirmed") or "confirmed"
        if kind and kind not in INDICATOR_KINDS:
            problem, kind = "已忽略：没有这种线索类型，显示全部类型。", ""
        if status not in STATUS_FILTERS:
            problem, status = "已忽略：没有这种状态，显示已确认的线索。", "confirmed"
        page = _page_number(params.get("page"))
        found, total = await dash.call(
            dash.store.search_indicators,
            query,
            status=None if status == "all" else status,
            kind=kind or None,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        filters = {"q": query, "kind": kind, "status": status}
        back = "/indicators?" + urlencode({**filters, "page": page})
        return dash.render(
            request,
            "indicators.html",
            me,
            status_code=status_code,
            notice=NOTICES.get(params.get("notice", ""), ""),
            problem=problem,
            indicators=found,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            filters=filters,
            pager_query=urlencode(filters),
            back=back,
            kinds=KINDS,
            statuses=INDICATOR_STATUSES,
            can_edit=me.user.role in STAFF_ROLES,
            added=added or {"kind": "", "note": ""},
        )

    async def show(request: Request, me: SignedIn) -> Response:
        return await listing(request, me)

    async def add(request: Request, me: SignedIn) -> Response:
        form = await dash.form(request)
        fields: dict[str, Any] = {k: form.get(k) for k in ("kind", "value", "note")}
        kind = fields["kind"] if isinstance(fields["kind"], str) else ""
        value = fields["value"] if isinstance(fields["value"], str) else ""
        note = (fields["note"] if isinstance(fields["note"], str) else "").strip()
        kept = {"kind": kind if kind in INDICATOR_KINDS else "", "note": note[:MAX_NOTE_CHARS]}
        try:
            if len(value) > 10 * MAX_VALUE_CHARS:  # not worth normalising
                raise ValueError(f"内容太长了，最多 {MAX_VALUE_CHARS} 个字符。")
            if len(note) > MAX_NOTE_CHARS:
                raise ValueError(f"备注太长了（{len(note)} 个字），最多 {MAX_NOTE_CHARS} 个字。")
            canonical = canonical_value(kind, value)
        except ValueError as exc:
            return await listing(request, me, problem=str(exc), added=kept, status_code=400)
        await dash.call(
            dash.store.set_indicator_status,
            kind,
            canonical,
            "confirmed",
            dash.actor(me),
            note=note or None,
        )
        return RedirectResponse("/indicators?notice=added", status_code=303)

    async def change(request: Request, me: SignedIn) -> Response:
        form = await dash.form(request)
        status = form.get("status")
        note = form.get("note")
        note = note.strip() if isinstance(note, str) else ""
        back = form.get("back")
        target = safe_next(back if isinstance(back, str) else None)
        if not target.startswith("/indicators"):
            target = "/indicators"
        if status not in INDICATOR_STATUSES:
            return await listing(
                request, me, problem="请选择确认、待核实或排除。", status_code=400
            )
        if len(note) > MAX_NOTE_CHARS:
            problem = f"备注太长了（{len(note)} 个字），最多 {MAX_NOTE_CHARS} 个字。"
            return await listing(request, me, problem=problem, status_code=400)
        try:
            await dash.call(
                dash.store.set_indicator_status_by_id,
                request.path_params["indicator_id"],
                status,
                dash.actor(me),
                note=note or None,
            )
        except NotFound:
            return dash.error(request, me, 404, "没有这条线索。")
        joiner = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{joiner}notice=status", status_code=303)

    return [
        dash.page("/indicators", show, name="indicators"),
        dash.page("/indicators", add, roles=STAFF_ROLES, methods=("POST",), name="indicator_add"),
        dash.page(
            "/indicators/{indicator_id:int}/status",
            change,
            roles=STAFF_ROLES,
            methods=("POST",),
            name="indicator_status",
        ),
    ]
