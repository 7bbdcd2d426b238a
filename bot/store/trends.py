"""Counts for the dashboard's trends page: when scams happen, how reports and pushes add up.

Each method is one query that selects only the columns it needs; the rows are bucketed here in
Python, by the Asia/Shanghai calendar, so the answer is the same on SQLite and PostgreSQL
(neither database's date functions are used).

A report's scam type is staff's verdict once they have given one, else the model's; reports
whose type is ``not_scam`` (dismissed ones included) are not scams and stay out of the heatmaps.
A report's place is its chat's area, else its resident's. ``scope`` is ``None`` for everything,
or the set of area ids a user may see: then rows with no area are hidden too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.store import workflow
from bot.store.models import Area, Campaign, CampaignDelivery, Case, Chat, Report, Resident
from bot.store.types import UTC, utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
SOURCES = ("cases", "reports")
NOT_SCAM = "not_scam"
UNREGISTERED = "未登记"
MAX_WEEKS = 520
MAX_DAYS = 3660

# The report's type: staff's verdict while the report is reviewed, else the model's guess.
REPORT_TYPE = sa.case(
    (
        sa.and_(
            Report.status.in_(sorted(workflow.REVIEWED)), Report.verdict_scam_type.is_not(None)
        ),
        Report.verdict_scam_type,
    ),
    else_=Report.scam_type,
)
# The report's place in the grid: its chat's area, else its resident's.
REPORT_AREA = sa.func.coalesce(Chat.area_id, Resident.area_id)


@dataclass(frozen=True)
class Heatmap:
    source: str  # "cases" | "reports"
    scam_type: str | None  # None = all types
    counts: tuple[tuple[int, ...], ...]  # 7 rows (Monday = 0) x 24 hours, Asia/Shanghai
    total: int
    peak: tuple[int, int] | None  # (weekday, hour) of the largest cell; None when empty


@dataclass(frozen=True)
class WeekCount:
    week_start: date  # a Monday, Asia/Shanghai
    total: int  # confirmed + dismissed + open
    confirmed: int  # staff's verdict: a scam
    dismissed: int  # staff's verdict: not a scam
    open: int  # no verdict yet (or under review again)


@dataclass(frozen=True)
class AreaCount:
    area_id: int | None  # the grid (or a community, for reports filed there); None: no area
    label: str  # "东湖社区/3网格", or "未登记"
    total: int
    confirmed: int


@dataclass(frozen=True)
class DayDeliveries:
    day: date  # Asia/Shanghai
    sent: int  # by the day it was sent
    failed: int  # these three by the day the delivery was planned
    skipped: int
    queued: int  # still to go out, including one being sent right now


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} is a naive datetime: give an aware datetime (UTC)")


def _check_scope(scope: Iterable[int] | None) -> frozenset[int] | None:
    if scope is None:
        return None
    if isinstance(scope, (str, bytes)):
        raise ValueError("scope must be None or a set of area ids")
    ids = frozenset(scope)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValueError("scope must be None or a set of area ids (integers)")
    return ids


def _check_count(name: str, value: int, most: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise ValueError(f"{name} must be a whole number from 1 to {most}, not {value!r}")


def _local(at: datetime) -> datetime:
    return at.astimezone(SHANGHAI)


def _midnight_utc(day: date) -> datetime:
    """The instant a Shanghai calendar day starts, in UTC."""
    return datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)


def _verdict(status: str, verdict: str | None) -> str:
    """``confirmed``, ``dismissed`` or ``open``: what staff have decided about a report."""
    if status not in workflow.REVIEWED or verdict is None:
        return "open"
    return "dismissed" if verdict == NOT_SCAM else "confirmed"


def _reports_query(*columns: Any) -> sa.Select[Any]:
    """A select over reports joined to the two tables that say where a report is."""
    return (
        sa.select(*columns)
        .select_from(Report)
        .outerjoin(Chat, Chat.id == Report.chat_id)
        .outerjoin(Resident, Resident.id == Report.resident_id)
    )


def _scoped(query: sa.Select[Any], area: Any, scope: frozenset[int] | None) -> sa.Select[Any]:
    if scope is None:
        return query
    return query.where(area.in_(sorted(scope)))  # NULL is never in: rows with no area hidden


def _scam_rows(
    source: str, scope: frozenset[int] | None, since: datetime | None
) -> tuple[sa.Select[Any], Any]:
    """The query of the (time, type) rows a heatmap counts, and its type expression."""
    if source == "cases":
        when, kind = Case.happened_at, Case.scam_type
        query = sa.select(when, kind).where(when.is_not(None))
        query = query.where(sa.or_(kind.is_(None), kind != NOT_SCAM))
        query = _scoped(query, Case.area_id, scope)
    else:
        when, kind = Report.created_at, REPORT_TYPE
        query = _reports_query(when, kind).where(
            Report.status != workflow.DISMISSED, kind != NOT_SCAM
        )
        query = _scoped(query, REPORT_AREA, scope)
    if since is not None:
        query = query.where(when >= since)
    return query, kind


def _area_labels(rows: Iterable[Any]) -> tuple[dict[int, int], dict[int, str]]:
    """For every area: the area its reports are counted at (a building's grid), and labels."""
    by_id = {row.id: row for row in rows}

    def path(area_id: int) -> list[Any]:
        chain: list[Any] = []
        current: int | None = area_id
        while current is not None and current in by_id and len(chain) < 16:
            chain.append(by_id[current])
            current = by_id[current].parent_id
        return chain

    counted_at: dict[int, int] = {}
    labels: dict[int, str] = {}
    for area_id in by_id:
        chain = path(area_id)
        while len(chain) > 1 and chain[0].level == "building":
            chain = chain[1:]
        counted_at[area_id] = chain[0].id
        labels[chain[0].id] = "/".join(a.name for a in reversed(chain))
    return counted_at, labels


class Trends:
    """Mixed into ``Store``: needs ``run_in``."""

    def heatmap(
        self,
        source: str,
        scam_type: str | None,
        scope: frozenset[int] | None,
        since: datetime | None = None,
    ) -> Heatmap:
        """Cases (by when they happened) or reports (by when they came in) per weekday and hour.

        Cases without a time are left out; with ``scam_type`` None every type is counted,
        cases of unknown type included.
        """
        _check_source(source)
        _check_aware("since", since)
        if scam_type is not None and (not isinstance(scam_type, str) or not scam_type):
            raise ValueError("scam_type must be a type code such as 'rebate', or None for all")
        ids = _check_scope(scope)

        def work(session: Session) -> list[datetime]:
            query, kind = _scam_rows(source, ids, since)
            if scam_type is not None:
                query = query.where(kind == scam_type)
            return [row[0] for row in session.execute(query)]

        grid = [[0] * 24 for _ in range(7)]
        for at in self.run_in(work, write=False):  # type: ignore[attr-defined]
            local = _local(at)
            grid[local.weekday()][local.hour] += 1
        total = sum(map(sum, grid))
        peak = None
        if total:
            peak = max(
                ((d, h) for d in range(7) for h in range(24)),
                key=lambda cell: (grid[cell[0]][cell[1]], -cell[0], -cell[1]),
            )
        return Heatmap(source, scam_type, tuple(map(tuple, grid)), total, peak)

    def trend_types(self, source: str, scope: frozenset[int] | None) -> list[tuple[str, int]]:
        """The scam types a heatmap can show, with how many rows each has, biggest first."""
        _check_source(source)
        ids = _check_scope(scope)

        def work(session: Session) -> list[tuple[str, int]]:
            query, _kind = _scam_rows(source, ids, None)
            counts = Counter(row[1] for row in session.execute(query) if row[1] is not None)
            return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def reports_per_week(
        self, scope: frozenset[int] | None, weeks: int = 12, now: datetime | None = None
    ) -> list[WeekCount]:
        """Every report (any type) per Shanghai week, oldest first; the last week holds ``now``."""
        _check_count("weeks", weeks, MAX_WEEKS)
        _check_aware("now", now)
        ids = _check_scope(scope)
        today = _local(now or utcnow()).date()
        this_monday = today - timedelta(days=today.weekday())
        mondays = [this_monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
        start, end = _midnight_utc(mondays[0]), _midnight_utc(this_monday + timedelta(weeks=1))

        def work(session: Session) -> list[Any]:
            query = _reports_query(
                Report.created_at, Report.status, Report.verdict_scam_type
            ).where(Report.created_at >= start, Report.created_at < end)
            return session.execute(_scoped(query, REPORT_AREA, ids)).all()

        counts: dict[date, Counter[str]] = {monday: Counter() for monday in mondays}
        for at, status, verdict in self.run_in(work, write=False):  # type: ignore[attr-defined]
            day = _local(at).date()
            counts[day - timedelta(days=day.weekday())][_verdict(status, verdict)] += 1
        return [
            WeekCount(
                week_start=monday,
                total=sum(c.values()),
                confirmed=c["confirmed"],
                dismissed=c["dismissed"],
                open=c["open"],
            )
            for monday, c in counts.items()
        ]

    def reports_per_area(
        self, scope: frozenset[int] | None, since: datetime | None = None
    ) -> list[AreaCount]:
        """Every report (any type) per grid, biggest first; a building's count at its grid."""
        _check_aware("since", since)
        ids = _check_scope(scope)

        def work(session: Session) -> tuple[list[Any], list[Any]]:
            areas = session.execute(sa.select(Area.id, Area.parent_id, Area.level, Area.name))
            query = _reports_query(REPORT_AREA, Report.status, Report.verdict_scam_type)
            if since is not None:
                query = query.where(Report.created_at >= since)
            return areas.all(), session.execute(_scoped(query, REPORT_AREA, ids)).all()

        areas, reports = self.run_in(work, write=False)  # type: ignore[attr-defined]
        counted_at, labels = _area_labels(areas)
        totals: Counter[int | None] = Counter()
        confirmed: Counter[int | None] = Counter()
        for area_id, status, verdict in reports:
            place = None if area_id is None else counted_at.get(area_id)
            totals[place] += 1
            confirmed[place] += _verdict(status, verdict) == "confirmed"
        found = [
            AreaCount(
                area_id=place,
                label=UNREGISTERED if place is None else labels[place],
                total=total,
                confirmed=confirmed[place],
            )
            for place, total in totals.items()
        ]
        return sorted(found, key=lambda a: (-a.total, -a.confirmed, a.area_id is None, a.label))

    def deliveries_per_day(
        self, scope: frozenset[int] | None, days: int = 30, now: datetime | None = None
    ) -> list[DayDeliveries]:
        """Campaign pushes per Shanghai day, oldest first; the last day is ``now``'s.

        Scoped by the campaign's area. A sent push counts on the day it was sent, the others
        on the day they were planned.
        """
        _check_count("days", days, MAX_DAYS)
        _check_aware("now", now)
        ids = _check_scope(scope)
        today = _local(now or utcnow()).date()
        calendar = [today - timedelta(days=days - 1 - i) for i in range(days)]
        start, end = _midnight_utc(calendar[0]), _midnight_utc(today + timedelta(days=1))
        sent = CampaignDelivery.status == "sent"

        def work(session: Session) -> list[Any]:
            query = (
                sa.select(
                    CampaignDelivery.status, CampaignDelivery.sent_at, CampaignDelivery.created_at
                )
                .join(Campaign, Campaign.id == CampaignDelivery.campaign_id)
                .where(
                    sa.or_(
                        sa.and_(
                            sent,
                            CampaignDelivery.sent_at >= start,
                            CampaignDelivery.sent_at < end,
                        ),
                        sa.and_(
                            ~sent,
                            CampaignDelivery.created_at >= start,
                            CampaignDelivery.created_at < end,
                        ),
                    )
                )
            )
            return session.execute(_scoped(query, Campaign.area_id, ids)).all()

        counts: dict[date, Counter[str]] = {day: Counter() for day in calendar}
        for status, sent_at, created_at in self.run_in(work, write=False):  # type: ignore[attr-defined]
            at = sent_at if status == "sent" else created_at
            counts[_local(at).date()]["queued" if status == "sending" else status] += 1
        return [
            DayDeliveries(
                day=day,
                sent=c["sent"],
                failed=c["failed"],
                skipped=c["skipped"],
                queued=c["queued"],
            )
            for day, c in counts.items()
        ]


__all__ = ["AreaCount", "DayDeliveries", "Heatmap", "Trends", "WeekCount"]
