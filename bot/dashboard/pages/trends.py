"""Trends: when and where scams hit, and what the campaigns delivered.

A weekday × hour heatmap (Asia/Shanghai) for one scam type or all, from the imported cases or
from residents' reports; reports per week (confirmed, dismissed, still open); reports per grid;
campaign deliveries per day. Everything is drawn on the server (``bot.dashboard.charts``) as
HTML tables and SVG, so the page needs no script and no chart library. A grid leader sees the
figures of their part of the grid only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from bot.dashboard import charts, labels
from bot.dashboard.web import Dashboard
from bot.store.accounts import SignedIn

SOURCES = {"cases": "案件数据", "reports": "居民举报"}
WEEKS = 12
DAYS = 30


def routes(dash: Dashboard) -> list[BaseRoute]:
    async def trends(request: Request, me: SignedIn) -> Response:
        scope = dash.visible(me)
        source = request.query_params.get("source", "cases")
        if source not in SOURCES:
            source = "cases"
        types = await dash.call(dash.store.trend_types, source, scope)
        scam_type = request.query_params.get("type") or None
        if scam_type not in {code for code, _count in types}:
            scam_type = None
        heatmap = await dash.call(dash.store.heatmap, source, scam_type, scope)
        weeks = await dash.call(dash.store.reports_per_week, scope, WEEKS)
        areas = await dash.call(dash.store.reports_per_area, scope)
        days = await dash.call(dash.store.deliveries_per_day, scope, DAYS)
        what = dash.scam_name(scam_type) if scam_type else "全部类型"
        caption = f"{SOURCES[source]} · {what} · 星期 × 时段（北京时间），共 {heatmap.total} 起"
        peak = None
        if heatmap.peak is not None:
            weekday, hour = heatmap.peak
            count = heatmap.counts[weekday][hour]
            peak = f"{labels.WEEKDAYS[weekday]} {hour}:00–{hour + 1}:00（{count} 起）"
        week_chart = charts.bar_chart(
            [w.week_start.strftime("%m-%d") for w in weeks],
            {
                "确认诈骗": [w.confirmed for w in weeks],
                "排除": [w.dismissed for w in weeks],
                "待处理": [w.open for w in weeks],
            },
        )
        day_chart = charts.bar_chart(
            [d.day.strftime("%m-%d") for d in days],
            {  # in the order of the stylesheet's colours: red, green, yellow, blue
                labels.DELIVERY_NAMES["failed"]: [d.failed for d in days],
                labels.DELIVERY_NAMES["sent"]: [d.sent for d in days],
                labels.DELIVERY_NAMES["skipped"]: [d.skipped for d in days],
                labels.DELIVERY_NAMES["queued"]: [d.queued for d in days],
            },
        )
        return dash.render(
            request,
            "trends.html",
            me,
            sources=SOURCES,
            source=source,
            types=[(code, dash.scam_name(code), count) for code, count in types],
            scam_type=scam_type or "",
            heatmap=charts.heatmap_table(heatmap, labels.WEEKDAYS, caption),
            heatmap_total=heatmap.total,
            peak=peak,
            week_chart=week_chart,
            week_series=["确认诈骗", "排除", "待处理"],
            weeks=weeks,
            areas=areas,
            day_chart=day_chart,
            day_series=[labels.DELIVERY_NAMES[k] for k in ("failed", "sent", "skipped", "queued")],
            deliveries_total=sum(d.sent + d.failed + d.skipped + d.queued for d in days),
            scoped=scope is not None,
        )

    return [dash.page("/trends", trends, name="trends")]
