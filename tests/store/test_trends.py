"""The trends page's counts: Shanghai weekday and hour, weeks and days with nothing in them,
types as staff judged them, and the grid scope, on both databases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bot.store import Store
from bot.store.campaigns import NewCampaign
from bot.store.models import CampaignDelivery, CampaignOccurrence, Case, CaseImport
from bot.store.models import Report as ReportRow
from bot.store.trends import SHANGHAI, AreaCount, DayDeliveries, WeekCount
from tests.store.helpers import make_report

UTC = timezone.utc


@dataclass
class Place:
    community: int
    grid1: int
    grid2: int
    building: int  # in grid 1


def _place(store: Store) -> Place:
    community = store.add_area("community", "东湖社区").id
    grid1 = store.add_area("grid", "1网格", community).id
    grid2 = store.add_area("grid", "2网格", community).id
    building = store.add_area("building", "5幢", grid1).id
    store.upsert_chat("rest", "-100", "group", "1网格群")
    store.set_chat_area("rest", "-100", grid1)
    store.upsert_chat("rest", "-200", "group", "2网格群")
    store.set_chat_area("rest", "-200", grid2)
    store.set_resident_area("in_building", building)
    store.set_resident_area("in_grid2", grid2)
    return Place(community, grid1, grid2, building)


def _report(
    store: Store,
    at: datetime,
    sender: str = "nowhere",
    *,
    chat: str | None = None,
    scam_type: str = "rebate",
) -> int:
    report = store.add_report(make_report(sender, scam_type=scam_type, chat_external_id=chat))

    def work(session):  # type: ignore[no-untyped-def]
        session.execute(
            sa.update(ReportRow).where(ReportRow.id == report.id).values(created_at=at)
        )

    store.run_in(work, write=True)
    return report.id


def _cases(store: Store, rows: list[tuple[datetime | None, str | None, int | None]]) -> None:
    def work(session):  # type: ignore[no-untyped-def]
        batch = CaseImport(file_name="cases.csv", file_sha256="0" * 64, actor="test")
        session.add(batch)
        session.flush()
        for i, (when, scam_type, area_id) in enumerate(rows):
            session.add(
                Case(
                    import_id=batch.id,
                    row_number=i + 2,
                    row_key=f"case:{i}",
                    happened_at=when,
                    scam_type=scam_type,
                    area_id=area_id,
                    audiences=[],
                    missing=[],
                )
            )

    store.run_in(work, write=True)


def _cells(counts: tuple[tuple[int, ...], ...]) -> dict[tuple[int, int], int]:
    return {(d, h): n for d, row in enumerate(counts) for h, n in enumerate(row) if n}


def test_cases_land_in_their_shanghai_weekday_and_hour(store: Store) -> None:
    place = _place(store)
    assert datetime(2031, 3, 3).weekday() == 0  # a Monday in UTC ...
    tuesday_0030 = datetime(2031, 3, 3, 16, 30, tzinfo=UTC)  # ... but Tuesday 00:30 in Shanghai
    monday_2359 = datetime(2031, 3, 3, 15, 59, tzinfo=UTC)
    sunday_2300 = datetime(2031, 3, 9, 23, 0, tzinfo=SHANGHAI)
    _cases(
        store,
        [
            (tuesday_0030, "rebate", place.grid1),
            (tuesday_0030 + timedelta(days=7), "rebate", place.grid1),
            (monday_2359, "romance", place.grid2),
            (sunday_2300, None, None),  # type unknown: only in the all-types map
            (None, "rebate", place.grid1),  # no time: left out
            (tuesday_0030, "not_scam", place.grid1),
        ],
    )
    everything = store.heatmap("cases", None, None)
    assert len(everything.counts) == 7
    assert all(len(row) == 24 for row in everything.counts)
    assert _cells(everything.counts) == {(1, 0): 2, (0, 23): 1, (6, 23): 1}
    assert (everything.total, everything.peak, everything.source) == (4, (1, 0), "cases")

    rebate = store.heatmap("cases", "rebate", None)
    assert _cells(rebate.counts) == {(1, 0): 2}
    assert rebate.scam_type == "rebate"
    assert store.heatmap("cases", "romance", frozenset({place.grid1})).total == 0
    assert store.heatmap("cases", "romance", frozenset({place.grid1})).peak is None
    assert store.heatmap("cases", None, frozenset({place.grid2})).total == 1
    assert store.heatmap("cases", None, None, since=tuesday_0030).total == 3
    assert store.trend_types("cases", None) == [("rebate", 2), ("romance", 1)]
    assert store.trend_types("cases", frozenset({place.grid2})) == [("romance", 1)]


def test_report_heatmap_counts_staff_types_and_leaves_out_non_scams(store: Store) -> None:
    _place(store)
    at = datetime(2031, 3, 4, 2, 15, tzinfo=UTC)  # Tuesday 10:15 in Shanghai
    _report(store, at)  # the model's rebate, not reviewed
    judged = _report(store, at + timedelta(hours=1))  # rebate by the model, staff: impersonation
    store.transition(judged, "confirmed", "cli", verdict_scam_type="impersonation")
    dismissed = _report(store, at + timedelta(hours=2))
    store.transition(dismissed, "dismissed", "cli")
    answered = _report(store, at + timedelta(hours=2))
    store.transition(answered, "dismissed", "cli")
    store.transition(answered, "answered", "cli")
    _report(store, at + timedelta(hours=3), scam_type="not_scam")
    reopened = _report(store, at + timedelta(hours=4))  # confirmed, then under review again
    store.transition(reopened, "confirmed", "cli", verdict_scam_type="romance")
    store.transition(reopened, "in_review", "cli")

    everything = store.heatmap("reports", None, None)
    assert _cells(everything.counts) == {(1, 10): 1, (1, 11): 1, (1, 14): 1}
    assert everything.peak == (1, 10)  # ties go to the earliest cell
    assert _cells(store.heatmap("reports", "rebate", None).counts) == {(1, 10): 1, (1, 14): 1}
    assert _cells(store.heatmap("reports", "impersonation", None).counts) == {(1, 11): 1}
    assert store.heatmap("reports", "not_scam", None).total == 0
    assert store.trend_types("reports", None) == [("rebate", 2), ("impersonation", 1)]


def test_report_scope_is_the_chat_area_else_the_residents(store: Store) -> None:
    place = _place(store)
    at = datetime(2031, 3, 5, 12, 0, tzinfo=UTC)
    _report(store, at, "in_building")  # resident lives in grid 1's building
    _report(store, at, "in_grid2", chat="-100")  # posted in grid 1's group: the chat wins
    _report(store, at, "in_grid2")  # privately: the resident's grid 2
    _report(store, at, "nowhere")  # no area at all
    store.upsert_chat("rest", "-300", "group", "未登记的群")
    _report(store, at, "in_grid2", chat="-300")  # a chat with no area: the resident's
    grid1 = frozenset(store.area_subtree(place.grid1))
    assert store.heatmap("reports", None, grid1).total == 2
    assert store.heatmap("reports", None, frozenset({place.grid1})).total == 1  # not the building
    assert store.heatmap("reports", None, frozenset({place.grid2})).total == 2
    assert (
        store.heatmap("reports", None, frozenset(store.area_subtree(place.community))).total == 4
    )
    assert store.heatmap("reports", None, None).total == 5
    assert store.heatmap("reports", None, frozenset()).total == 0
    assert store.trend_types("reports", frozenset()) == []


def test_reports_per_week_has_every_week_oldest_first(store: Store) -> None:
    place = _place(store)
    now = datetime(2031, 3, 12, 9, 0, tzinfo=SHANGHAI)  # a Wednesday
    sunday_late = datetime(2031, 3, 9, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC, week of 3 March
    monday_early = datetime(2031, 3, 10, 0, 10, tzinfo=SHANGHAI)  # 9 March 16:10 UTC
    assert monday_early.astimezone(UTC).date() == date(2031, 3, 9)
    _report(store, sunday_late, "in_grid2")
    confirmed = _report(store, monday_early, "in_grid2")
    store.transition(confirmed, "confirmed", "cli", verdict_scam_type="rebate")
    dismissed = _report(store, monday_early + timedelta(hours=1), "in_building")
    store.transition(dismissed, "dismissed", "cli")
    _report(store, datetime(2031, 2, 23, 23, 59, tzinfo=SHANGHAI))  # before the first week
    _report(store, datetime(2031, 3, 17, 0, 0, tzinfo=SHANGHAI))  # next week: not yet shown

    weeks = store.reports_per_week(None, weeks=3, now=now)
    assert weeks == [
        WeekCount(date(2031, 2, 24), total=0, confirmed=0, dismissed=0, open=0),
        WeekCount(date(2031, 3, 3), total=1, confirmed=0, dismissed=0, open=1),
        WeekCount(date(2031, 3, 10), total=2, confirmed=1, dismissed=1, open=0),
    ]
    scoped = store.reports_per_week(frozenset({place.grid2}), weeks=3, now=now)
    assert [w.total for w in scoped] == [0, 1, 1]
    assert len(store.reports_per_week(None, now=now)) == 12


def test_reports_per_area_counts_a_building_at_its_grid(store: Store) -> None:
    place = _place(store)
    at = datetime(2031, 3, 5, 12, 0, tzinfo=UTC)
    for _ in range(2):
        _report(store, at, "in_building")
    confirmed = _report(store, at, "x", chat="-100")
    store.transition(confirmed, "confirmed", "cli", verdict_scam_type="rebate")
    _report(store, at, "in_grid2")
    _report(store, at - timedelta(days=30), "in_grid2")
    for _ in range(3):
        _report(store, at, "nowhere")
    community_level = store.add_area("community", "西溪社区").id
    store.set_resident_area("in_community", community_level)
    _report(store, at, "in_community")

    assert store.reports_per_area(None) == [
        AreaCount(place.grid1, "东湖社区/1网格", total=3, confirmed=1),  # ties: more confirmed
        AreaCount(None, "未登记", total=3, confirmed=0),
        AreaCount(place.grid2, "东湖社区/2网格", total=2, confirmed=0),
        AreaCount(community_level, "西溪社区", total=1, confirmed=0),
    ]
    recent = store.reports_per_area(frozenset(store.area_subtree(place.community)), since=at)
    assert recent == [
        AreaCount(place.grid1, "东湖社区/1网格", total=3, confirmed=1),
        AreaCount(place.grid2, "东湖社区/2网格", total=1, confirmed=0),
    ]


def _deliveries(store: Store, rows: list[tuple[int, str, datetime, datetime | None]]) -> None:
    """One push per row (area of its campaign, status, planned, sent) to grid 1's group."""
    admin = store.add_user("admin", "admin").id
    campaigns = {}
    for area in {area for area, *_ in rows}:
        campaigns[area] = store.add_campaign(
            NewCampaign(
                name="防骗提醒",
                area_id=area,
                schedule_kind="once",
                schedule={"at": "2031-03-01T10:00:00+08:00"},
                starts_at=datetime(2031, 3, 1, tzinfo=SHANGHAI),
                text="不要点陌生链接。",
            ),
            admin,
        ).id
    chat_id = store.get_chat("rest", "-100").id  # type: ignore[union-attr]

    def work(session):  # type: ignore[no-untyped-def]
        for i, (area, status, created, sent) in enumerate(rows):
            occurrence = CampaignOccurrence(
                campaign_id=campaigns[area],
                due_at=created + timedelta(minutes=i),
                status="planned",
            )
            session.add(occurrence)
            session.flush()
            session.add(
                CampaignDelivery(
                    campaign_id=campaigns[area],
                    occurrence_id=occurrence.id,
                    chat_id=chat_id,
                    status=status,
                    expires_at=created + timedelta(days=1),
                    created_at=created,
                    sent_at=sent,
                )
            )

    store.run_in(work, write=True)


def test_deliveries_per_day_has_every_day_and_counts_sent_by_sent_at(store: Store) -> None:
    place = _place(store)
    now = datetime(2031, 3, 5, 9, 0, tzinfo=SHANGHAI)
    late = datetime(2031, 3, 3, 23, 50, tzinfo=SHANGHAI)  # planned on the 3rd, sent on the 4th
    _deliveries(
        store,
        [
            (place.grid1, "sent", late, late + timedelta(minutes=20)),
            (place.grid1, "failed", late, None),
            (place.grid1, "skipped", late, None),
            (place.grid2, "queued", datetime(2031, 3, 5, 8, 0, tzinfo=SHANGHAI), None),
            (place.grid2, "sending", datetime(2031, 3, 5, 8, 5, tzinfo=SHANGHAI), None),
            (place.grid2, "sent", late - timedelta(days=9), late - timedelta(days=9)),  # too old
        ],
    )
    days = store.deliveries_per_day(None, days=4, now=now)
    assert days == [
        DayDeliveries(date(2031, 3, 2), sent=0, failed=0, skipped=0, queued=0),
        DayDeliveries(date(2031, 3, 3), sent=0, failed=1, skipped=1, queued=0),
        DayDeliveries(date(2031, 3, 4), sent=1, failed=0, skipped=0, queued=0),
        DayDeliveries(date(2031, 3, 5), sent=0, failed=0, skipped=0, queued=2),
    ]
    grid2 = store.deliveries_per_day(frozenset({place.grid2}), days=4, now=now)
    assert [(d.sent, d.failed, d.queued) for d in grid2] == [(0, 0, 0)] * 3 + [(0, 0, 2)]
    assert sum(d.sent for d in store.deliveries_per_day(None, days=12, now=now)) == 2
    assert len(store.deliveries_per_day(None, now=now)) == 30


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.heatmap("calls", None, None), "source must be one of"),
        (lambda s: s.heatmap("cases", None, None, since=datetime(2031, 3, 1)), "naive"),
        (lambda s: s.heatmap("cases", "", None), "scam_type"),
        (lambda s: s.heatmap("cases", None, "12"), "scope"),
        (lambda s: s.trend_types("reports", frozenset({"1"})), "scope"),
        (lambda s: s.reports_per_week(None, weeks=0), "weeks"),
        (lambda s: s.reports_per_week(None, now=datetime(2031, 3, 1)), "naive"),
        (lambda s: s.reports_per_area(None, since=datetime(2031, 3, 1)), "naive"),
        (lambda s: s.deliveries_per_day(None, days=100_000), "days"),
    ],
)
def test_bad_input_is_refused_clearly(store: Store, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call(store)
