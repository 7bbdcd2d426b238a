"""Peak-time campaigns: planted peaks in synthetic case data give send times just before them;
noise gives none."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from bot.store import Store
from bot.store.campaigns import SHANGHAI
from bot.store.models import Case, CaseImport
from bot.store.types import utcnow
from campaigns.planner import Planner
from tests.campaigns.grid import MONDAY, campaign, make_grid

YEAR_START = datetime(2030, 1, 7, tzinfo=SHANGHAI)  # a Monday, a year before the campaigns run


def _cases(store: Store, rows: list[tuple[datetime, str, list[str]]]) -> None:
    def work(session):  # type: ignore[no-untyped-def]
        batch = CaseImport(file_name="synthetic.csv", file_sha256="0" * 64, actor="test")
        session.add(batch)
        session.flush()
        for i, (when, scam_type, audiences) in enumerate(rows):
            session.add(
                Case(
                    import_id=batch.id,
                    row_number=i + 2,
                    row_key=f"synthetic:{i}",
                    happened_at=when,
                    scam_type=scam_type,
                    audiences=audiences,
                    missing=[],
                    created_at=utcnow(),
                )
            )

    store.run_in(work, write=True)


def _uniform(rng: random.Random, n: int) -> list[datetime]:
    return [YEAR_START + timedelta(minutes=rng.randrange(52 * 7 * 24 * 60)) for _ in range(n)]


def _planted(rng: random.Random, n: int, weekday: int, hour: int, hours: int) -> list[datetime]:
    out = []
    for _ in range(n):
        week = rng.randrange(52)
        out.append(
            YEAR_START
            + timedelta(days=7 * week + weekday, hours=hour, minutes=rng.randrange(hours * 60))
        )
    return out


def _run_two_weeks(planner: Planner) -> None:
    now = MONDAY
    while now < MONDAY + timedelta(days=14):
        now += timedelta(minutes=30)
        planner.tick(now)


def test_send_times_fall_the_lead_before_each_planted_peak_and_nowhere_else(
    store: Store,
) -> None:
    rng = random.Random(20261202)
    young = ["young_workers"]
    rows = [(t, "rebate", young) for t in _uniform(rng, 300)]
    rows += [(t, "rebate", young) for t in _planted(rng, 80, weekday=2, hour=20, hours=2)]
    rows += [(t, "romance", ["women"]) for t in _uniform(rng, 400)]  # noise only
    _cases(store, rows)
    grid = make_grid(store)
    store.register_group("telegram", "-1003999", grid.grid1, ["young_workers"], grid.leader1)
    rebate = store.add_campaign(
        campaign(
            area_id=grid.grid1,
            audience_tags=("young_workers",),
            scam_types=("rebate",),
            schedule_kind="peak",
            schedule={"lead_minutes": 30},
            weekly_budget=5,
        ),
        grid.leader1,
    )
    romance = store.add_campaign(
        campaign(
            name="杀猪盘提醒",
            area_id=grid.grid1,
            audience_tags=("women",),
            scam_types=("romance",),
            schedule_kind="peak",
            schedule={"lead_minutes": 30},
        ),
        grid.leader1,
    )
    _run_two_weeks(Planner(store, templates={}))
    times = sorted(
        o.due_at.astimezone(SHANGHAI)
        for o in store.campaign_report(rebate.id, occurrences=50).occurrences
    )
    # The grid has too few cases of its own: the analysis fell back to all the data, found the
    # planted Wednesday evening, and each push goes 30 minutes before it.
    assert [(t.weekday(), t.strftime("%H:%M")) for t in times] == [(2, "19:30"), (2, "19:30")]
    assert [t.date() for t in times] == [
        (MONDAY + timedelta(days=2)).date(),
        (MONDAY + timedelta(days=9)).date(),
    ]
    report = store.campaign_report(rebate.id)
    assert report.counts == {"queued": 2}  # the young workers' group, each Wednesday
    assert store.campaign_report(romance.id).occurrences == []  # noise: no peak, no push


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_daily_peak_gives_a_push_every_day_before_it(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    rows = [(t, "customer_service", ["elderly"]) for t in _uniform(rng, 300)]
    for day in range(7):
        rows += [
            (t, "customer_service", ["elderly"])
            for t in _planted(rng, 15, weekday=day, hour=9, hours=1)
        ]
    _cases(store, rows)
    grid = make_grid(store)
    made = store.add_campaign(
        campaign(
            area_id=grid.grid1,
            audience_tags=("elderly",),
            scam_types=("customer_service",),
            schedule_kind="peak",
            schedule={"lead_minutes": 60},
            weekly_budget=50,
        ),
        grid.leader1,
    )
    planner = Planner(store, templates={})
    now = MONDAY
    while now < MONDAY + timedelta(days=7):
        now += timedelta(minutes=30)
        planner.tick(now)
    times = [
        o.due_at.astimezone(SHANGHAI)
        for o in store.campaign_report(made.id, occurrences=50).occurrences
    ]
    assert sorted(t.strftime("%H:%M") for t in times) == ["08:00"] * 7
    assert len({t.date() for t in times}) == 7
