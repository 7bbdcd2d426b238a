"""Learning from reviews: reviewed reports as Rasa NLU training examples, for a person to check.

Staff pick a period and download a YAML file in Rasa's training-data format, one example per
reviewed report (the masked text; a confirmed report under its scam type's intent, a dismissed one
under ``not_scam``), leaving out what the training data already has. Nothing goes into
``nlu_data`` by itself: a person reads each example, moves the good ones there, and the next
``make train`` learns them. Every download is audited.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from bot.dashboard.nlu_export import export_nlu
from bot.dashboard.web import PAGE_HEADERS, SHANGHAI, STAFF_ROLES, Dashboard
from bot.store.accounts import SignedIn


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _window(request: Request) -> tuple[datetime | None, datetime | None, str]:
    """The period asked for, as instants (the ``until`` day included); a message if bad."""
    since, until = _day(request.query_params.get("since")), _day(request.query_params.get("until"))
    problem = ""
    for key, parsed in (("since", since), ("until", until)):
        if request.query_params.get(key) and parsed is None:
            problem = "日期格式应为 年-月-日，例如 2026-12-01；已忽略。"
    start = datetime.combine(since, time(), SHANGHAI) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), SHANGHAI) if until else None
    if start and end and start >= end:
        problem, start, end = "开始日期晚于结束日期；已忽略。", None, None
    return start, end, problem


def routes(dash: Dashboard) -> list[BaseRoute]:
    async def export_page(request: Request, me: SignedIn) -> Response:
        start, end, problem = _window(request)
        result = await dash.call(export_nlu, dash.store, dash.taxonomy, since=start, until=end)
        by_intent = sorted(result.by_intent.items(), key=lambda item: (-item[1], item[0]))
        return dash.render(
            request,
            "export.html",
            me,
            since=request.query_params.get("since", "")[:10] if start else "",
            until=request.query_params.get("until", "")[:10] if end else "",
            problem=problem,
            examples=result.examples,
            skipped_known=result.skipped_known,
            by_intent=by_intent,
        )

    async def download(request: Request, me: SignedIn) -> Response:
        start, end, _problem = _window(request)
        result = await dash.call(export_nlu, dash.store, dash.taxonomy, since=start, until=end)
        await dash.call(
            dash.store.audit,
            dash.actor(me),
            "nlu.export",
            "report",
            None,
            {
                "examples": result.examples,
                "since": start.isoformat() if start else None,
                "until": end.isoformat() if end else None,
            },
        )
        stamp = datetime.now(SHANGHAI).strftime("%Y%m%d-%H%M")
        headers = {
            **PAGE_HEADERS,
            "Content-Disposition": f'attachment; filename="reviewed-{stamp}.yml"',
        }
        return Response(result.yaml_text, media_type="application/yaml", headers=headers)

    return [
        dash.page("/export", export_page, roles=STAFF_ROLES, name="export"),
        dash.page("/export/nlu.yml", download, roles=STAFF_ROLES, name="export_download"),
    ]
