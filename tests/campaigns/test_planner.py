"""Planning campaigns on a clock of the test's own: due times, targeting, skips, at most once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store import Store
from bot.store.campaigns import INTERRUPTED, SHANGHAI
from campaigns.planner import Planner
from tests.campaigns.grid import MONDAY, campaign, make_grid

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _deliveries(store: Store, campaign_id: int) -> dict[int, tuple[str, str | None]]:
    """chat id -> (status, reason) of every delivery of a campaign."""
    import sqlalchemy as sa

    from bot.store.models import CampaignDelivery

    def work(session):  # type: ignore[no-untyped-def]
        rows = session.execute(
            sa.select(CampaignDelivery.chat_id, CampaignDelivery.status, CampaignDelivery.reason)
            .where(CampaignDelivery.campaign_id == campaign_id)
            .order_by(CampaignDelivery.id)
        ).all()
        return [(c, s, r) for c, s, r in rows]

    return store.run_in(work, write=False)


def _by_chat(rows: list[tuple[int, str, str | None]]) -> dict[int, list[tuple[str, str | None]]]:
    out: dict[int, list[tuple[str, str | None]]] = {}
    for chat, status, reason in rows:
        out.setdefault(chat, []).append((status, reason))
    return out


def _planner(store: Store) -> Planner:
    return Planner(store, templates={})


def test_a_one_off_campaign_goes_once_to_the_targeted_groups_only(store: Store) -> None:
    grid = make_grid(store)
    made = store.add_campaign(
        campaign(area_id=grid.grid1, audience_tags=("elderly",)), grid.leader1
    )
    planner = _planner(store)
    due = MONDAY + timedelta(hours=10)
    before = planner.tick(due - timedelta(minutes=1))
    assert before.planned == [] and before.next_due == due
    result = planner.tick(due + timedelta(seconds=5))
    assert len(result.planned) == 1 and result.planned[0].queued == 2
    queued = _by_chat(_deliveries(store, made.id))
    # grid 1's elderly group and its building's group; not the students' group nor grid 2's
    assert set(queued) == {grid.chats["elderly1"], grid.chats["building1"]}
    assert all(v == [("queued", None)] for v in queued.values())
    for minutes in (1, 5, 60, 600):  # ticking again, late, or after a restart adds nothing
        assert planner.tick(due + timedelta(minutes=minutes)).planned == []
    assert len(_deliveries(store, made.id)) == 2
    assert store.get_campaign(made.id).status == "ended"


def test_recurring_due_times_are_asia_shanghai_and_each_recorded_once(store: Store) -> None:
    grid = make_grid(store)
    made = store.add_campaign(
        campaign(
            area_id=grid.community,
            schedule_kind="recurring",
            schedule={"weekdays": [0, 2], "times": ["09:30", "19:00"]},
            weekly_budget=50,
        ),
        store.add_user("admin", "admin").id,
    )
    planner = _planner(store)
    now = MONDAY
    dues = []
    while now < MONDAY + timedelta(days=14):  # a tick every 20 minutes for two weeks
        now += timedelta(minutes=20)
        for planned in planner.tick(now).planned:
            dues.append(planned)
    occurrences = store.campaign_report(made.id, occurrences=50).occurrences
    times = sorted(o.due_at.astimezone(SHANGHAI) for o in occurrences)
    assert [(t.weekday(), t.strftime("%H:%M")) for t in times] == [
        (0, "09:30"), (0, "19:00"), (2, "09:30"), (2, "19:00"),
    ] * 2  # fmt: skip
    assert len(dues) == 8
    assert all(p.queued == 4 for p in dues)  # every group of the community, tags not asked


def test_quiet_hours_skip_and_say_so(store: Store) -> None:
    grid = make_grid(store)
    made = store.add_campaign(
        campaign(
            area_id=grid.grid1,
            schedule_kind="recurring",
            schedule={"weekdays": [0], "times": ["06:30", "07:00", "21:59", "22:00"]},
        ),
        grid.leader1,
    )
    planner = _planner(store)
    for minute in range(6 * 60, 23 * 60, 10):  # ticking every 10 minutes, 06:00 to 23:00
        planner.tick(MONDAY + timedelta(minutes=minute))
    report = store.campaign_report(made.id)
    statuses = {
        o.due_at.astimezone(SHANGHAI).strftime("%H:%M"): o.counts for o in report.occurrences
    }
    assert statuses == {
        "06:30": {"skipped": 3},
        "07:00": {"queued": 3},
        "21:59": {"queued": 3},
        "22:00": {"skipped": 3},
    }
    assert report.skipped == {"quiet_hours": 6}


def test_the_weekly_budget_counts_every_campaign_over_a_rolling_week(store: Store) -> None:
    grid = make_grid(store)
    daily = store.add_campaign(
        campaign(
            area_id=grid.grid2,
            schedule_kind="recurring",
            schedule={"weekdays": list(range(7)), "times": ["10:00"]},
            weekly_budget=2,
        ),
        grid.leader2,
    )
    planner = _planner(store)
    for day in range(9):
        planner.tick(MONDAY + timedelta(days=day, hours=10, seconds=1))
    [chat] = [grid.chats["elderly2"]]
    got = [s for s, _r in _by_chat(_deliveries(store, daily.id))[chat]]
    # days 1-2 queued; 3-7 over the budget; day 8 (the next Monday) has day 1 out of the week
    assert got == ["queued", "queued", "skipped", "skipped", "skipped", "skipped", "skipped",
                   "queued", "queued"]  # fmt: skip
    assert store.campaign_report(daily.id).skipped == {"budget": 5}


def test_an_opted_out_group_is_skipped_and_an_opted_in_one_receives(store: Store) -> None:
    grid = make_grid(store)
    store.set_campaigns_opt_out("telegram", grid.external["elderly1"], True, "test")
    made = store.add_campaign(campaign(area_id=grid.grid1), grid.leader1)
    _planner(store).tick(MONDAY + timedelta(hours=10, seconds=1))
    rows = _by_chat(_deliveries(store, made.id))
    assert rows[grid.chats["elderly1"]] == [("skipped", "opted_out")]
    assert rows[grid.chats["students1"]] == [("queued", None)]
    store.set_campaigns_opt_out("telegram", grid.external["elderly1"], False, "test")
    again = store.add_campaign(campaign(area_id=grid.grid1, name="再提醒"), grid.leader1)
    _planner(store).tick(MONDAY + timedelta(hours=10, seconds=2))
    assert _by_chat(_deliveries(store, again.id))[grid.chats["elderly1"]] == [("queued", None)]


def test_a_due_time_missed_while_down_is_sent_within_its_grace_else_recorded_skipped(
    store: Store,
) -> None:
    grid = make_grid(store)
    made = store.add_campaign(
        campaign(
            area_id=grid.grid2,
            schedule_kind="recurring",
            schedule={"weekdays": [0], "times": ["09:00", "11:00", "13:00"]},
            grace_minutes=60,
            weekly_budget=10,
        ),
        grid.leader2,
    )
    # The bot was down from before 09:00 until 13:30: 09:00 and 11:00 are past their hour of
    # grace, 13:00 is not.
    result = _planner(store).tick(MONDAY + timedelta(hours=13, minutes=30))
    assert [p.status for p in result.planned] == ["missed", "missed", "planned"]
    assert [p.queued for p in result.planned] == [0, 0, 1]
    assert store.campaign_report(made.id).skipped == {"missed": 2}


def test_only_a_leader_of_the_area_may_target_it(store: Store) -> None:
    grid = make_grid(store)
    with pytest.raises(PermissionError):
        store.add_campaign(campaign(area_id=grid.grid1), grid.leader2)
    with pytest.raises(PermissionError):  # the community is above the grid they lead
        store.add_campaign(campaign(area_id=grid.community), grid.leader1)
    resident = store.add_user("staff1", "staff").id
    with pytest.raises(PermissionError):
        store.add_campaign(campaign(area_id=grid.grid1), resident)
    # a leader of grid 1 leads its buildings too
    assert store.add_campaign(campaign(area_id=grid.building), grid.leader1).area_id == (
        grid.building
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": " "}, "name"),
        ({"schedule_kind": "weekly"}, "schedule kind"),
        ({"schedule": {"at": "2031-03-03T10:00"}}, "time zone"),
        ({"schedule_kind": "recurring", "schedule": {"weekdays": [7], "times": ["9:00"]}},
         "weekdays"),
        ({"schedule_kind": "recurring", "schedule": {"weekdays": [1], "times": ["25:00"]}},
         "HH:MM"),
        ({"schedule_kind": "peak", "schedule": {"lead_minutes": 30}}, "scam types"),
        ({"text": None}, "template or its own text"),
        ({"quiet_start": "23:00", "quiet_end": None}, "start and an end"),
        ({"weekly_budget": 0}, "budget"),
        ({"ends_at": MONDAY - timedelta(days=1)}, "end after"),
    ],
)  # fmt: skip
def test_a_campaign_that_cannot_work_is_refused_with_the_reason(
    store: Store, fields: dict, message: str
) -> None:
    grid = make_grid(store)
    with pytest.raises(ValueError, match=message):
        store.add_campaign(campaign(area_id=grid.grid1, **fields), grid.leader1)


def test_claims_expire_after_the_grace_time_and_interrupted_sends_are_never_repeated(
    store: Store,
) -> None:
    grid = make_grid(store)
    made = store.add_campaign(campaign(area_id=grid.grid1, grace_minutes=30), grid.leader1)
    due = MONDAY + timedelta(hours=10)
    _planner(store).tick(due)
    first = store.deliveries_claim(1, now=due + timedelta(seconds=1))
    assert len(first) == 1 and "冒充客服" in first[0].text
    assert store.deliveries_interrupted(0.0) == 1  # the process died while sending it
    assert store.deliveries_claim(10, now=due + timedelta(minutes=31)) == []  # the rest expired
    rows = _by_chat(_deliveries(store, made.id))
    assert sorted(v[0][0] for v in rows.values()) == ["failed", "failed", "failed"]
    reasons = sorted(v[0][1] for v in rows.values())
    assert reasons == sorted([INTERRUPTED, "expired", "expired"])
    assert store.campaign_report(made.id).failed == {"interrupted": 1, "expired": 2}


def test_pausing_a_campaign_holds_what_was_queued(store: Store) -> None:
    grid = make_grid(store)
    made = store.add_campaign(campaign(area_id=grid.grid1), grid.leader1)
    _planner(store).tick(MONDAY + timedelta(hours=10))
    store.set_campaign_status(made.id, "cancelled", "user:1")
    assert store.deliveries_claim(10, now=MONDAY + timedelta(hours=10, seconds=1)) == []
    assert store.campaign_report(made.id).skipped == {"campaign cancelled": 3}


def test_a_campaign_moves_only_between_statuses_that_make_sense(store: Store) -> None:
    from bot.store.campaigns import CampaignMoveError

    grid = make_grid(store)
    made = store.add_campaign(campaign(area_id=grid.grid1), grid.leader1)
    assert store.set_campaign_status(made.id, "paused", "t").status == "paused"
    assert store.set_campaign_status(made.id, "active", "t").status == "active"
    assert store.set_campaign_status(made.id, "cancelled", "t").status == "cancelled"
    for status in ("active", "paused", "ended"):  # cancelled is final
        with pytest.raises(CampaignMoveError):
            store.set_campaign_status(made.id, status, "t")


def test_a_claim_never_takes_a_push_past_its_grace_even_without_the_sweep(store: Store) -> None:
    grid = make_grid(store)
    made = store.add_campaign(campaign(area_id=grid.grid1, grace_minutes=30), grid.leader1)
    due = MONDAY + timedelta(hours=10)
    _planner(store).tick(due)
    late = due + timedelta(minutes=31)
    assert store.deliveries_claim(10, now=late, expire=False) == []
    assert store.delivery_counts(made.id) == {"queued": 3}  # not swept yet
    assert store.deliveries_claim(10, now=late) == []
    assert store.delivery_counts(made.id) == {"failed": 3}
