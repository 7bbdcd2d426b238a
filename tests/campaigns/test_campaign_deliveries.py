"""A campaign's pushes, group by group, as the campaign page lists them: on both databases, with
the planner's own skips, sends and failures on the test's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.store import Store
from bot.store.campaigns import MAX_DELIVERY_PAGE, DeliveryRow
from bot.store.errors import NotFound
from tests.campaigns.grid import MONDAY, Grid, campaign, make_grid

FIRST = MONDAY + timedelta(hours=10)  # Monday 10:00: pushed
QUIET = MONDAY + timedelta(days=1, hours=23)  # Tuesday 23:00: in the quiet hours
THIRD = MONDAY + timedelta(days=2, hours=10)  # Wednesday 10:00: pushed, one retried
KICKED = "Forbidden: bot was kicked from the group chat"


@dataclass
class World:
    grid: Grid
    campaign_id: int
    other_id: int  # grid 2's campaign, whose pushes must not show up


@pytest.fixture
def world(store: Store) -> World:
    """Grid 1's campaign to all its groups (students1 opted out) over three due times: the first
    sent to elderly1 and refused in building1, the second skipped as quiet, the third waiting
    (one push of it to be tried again)."""
    grid = make_grid(store)
    store.set_campaigns_opt_out("telegram", grid.external["students1"], True, "test")
    made = store.add_campaign(
        campaign(
            area_id=grid.grid1,
            schedule_kind="recurring",
            schedule={"weekdays": [0, 1, 2], "times": ["10:00"]},
        ),
        grid.leader1,
    )
    store.plan_occurrence(made.id, FIRST, "提醒", now=FIRST)
    claimed = {d.chat_id: d for d in store.deliveries_claim(10, now=FIRST)}
    assert set(claimed) == {grid.chats["elderly1"], grid.chats["building1"]}
    store.delivery_sent(claimed[grid.chats["elderly1"]].id, 501)
    store.delivery_fail(claimed[grid.chats["building1"]].id, KICKED)
    store.plan_occurrence(made.id, QUIET, "提醒", now=QUIET)
    store.plan_occurrence(made.id, THIRD, "提醒", now=THIRD)
    first = store.deliveries_claim(1, now=THIRD)[0]
    store.delivery_retry(first.id, "TimedOut: Timed out", THIRD + timedelta(minutes=1))
    other = store.add_campaign(campaign(area_id=grid.grid2), grid.leader2)
    store.plan_occurrence(other.id, FIRST, "提醒", now=FIRST)
    return World(grid, made.id, other.id)


def _line(row: DeliveryRow) -> tuple[object, ...]:
    return (row.due_at, row.chat_title, row.status, row.reason_kind, row.attempts)


def test_every_push_is_listed_newest_first_with_its_group_and_outcome(
    store: Store, world: World
) -> None:
    rows, total = store.campaign_deliveries(world.campaign_id)
    assert total == 9 and len(rows) == 9
    assert [_line(r) for r in rows] == [
        (THIRD, "elderly1", "queued", "TimedOut", 1),
        (THIRD, "students1", "skipped", "opted_out", 0),
        (THIRD, "building1", "queued", None, 0),
        (QUIET, "elderly1", "skipped", "quiet_hours", 0),
        (QUIET, "students1", "skipped", "opted_out", 0),  # opting out comes first
        (QUIET, "building1", "skipped", "quiet_hours", 0),
        (FIRST, "elderly1", "sent", None, 1),
        (FIRST, "students1", "skipped", "opted_out", 0),
        (FIRST, "building1", "failed", "Forbidden", 1),
    ]
    by_title = {r.chat_title: r for r in rows[6:]}
    assert by_title["elderly1"].area_label == "东湖社区/1网格"
    assert by_title["building1"].area_label == "东湖社区/1网格/5幢"
    assert by_title["building1"].reason == KICKED  # the whole reason kept, its kind derived
    assert by_title["elderly1"].sent_at is not None and by_title["building1"].sent_at is None
    assert by_title["elderly1"].chat_id == world.grid.chats["elderly1"]
    assert len({r.id for r in rows}) == 9
    other, other_total = store.campaign_deliveries(world.other_id)
    assert other_total == 1 and other[0].chat_title == "elderly2"
    assert other[0].area_label == "东湖社区/2网格"


def test_the_status_filter_and_its_count(store: Store, world: World) -> None:
    skipped, total = store.campaign_deliveries(world.campaign_id, status="skipped")
    assert total == 5 and {r.status for r in skipped} == {"skipped"}
    assert [r.due_at for r in skipped] == [THIRD, QUIET, QUIET, QUIET, FIRST]
    failed, total = store.campaign_deliveries(world.campaign_id, status="failed")
    assert total == 1 and failed[0].reason_kind == "Forbidden"
    assert store.campaign_deliveries(world.campaign_id, status="sending") == ([], 0)


def test_pages_follow_on_without_gaps_or_repeats(store: Store, world: World) -> None:
    every, _total = store.campaign_deliveries(world.campaign_id)
    seen = []
    for offset in (0, 4, 8):
        rows, total = store.campaign_deliveries(world.campaign_id, limit=4, offset=offset)
        assert total == 9
        seen.extend(r.id for r in rows)
    assert seen == [r.id for r in every]
    assert store.campaign_deliveries(world.campaign_id, offset=100) == ([], 9)
    page, total = store.campaign_deliveries(world.campaign_id, status="skipped", limit=2, offset=2)
    assert total == 5 and [r.due_at for r in page] == [QUIET, QUIET]


def test_a_page_is_two_queries_however_many_groups(store: Store, world: World) -> None:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        rows, _total = store.campaign_deliveries(world.campaign_id)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert len(rows) == 9
    assert len(statements) == 2


def test_bad_arguments_and_missing_campaigns(store: Store, world: World) -> None:
    cid = world.campaign_id
    for kwargs, message in (
        ({"status": "lost"}, "status must be one of"),
        ({"status": ""}, "status must be one of"),
        ({"limit": 0}, "limit must be 1 to"),
        ({"limit": MAX_DELIVERY_PAGE + 1}, "limit must be 1 to"),
        ({"limit": True}, "limit must be a whole number"),
        ({"limit": "10"}, "limit must be a whole number"),
        ({"offset": -1}, "offset must be at least 0"),
        ({"offset": 1.5}, "offset must be a whole number"),
    ):
        with pytest.raises(ValueError, match=message):
            store.campaign_deliveries(cid, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.campaign_deliveries(99999)
    unplanned = store.add_campaign(campaign(area_id=world.grid.grid1), world.grid.leader1)
    assert store.campaign_deliveries(unplanned.id) == ([], 0)
    assert len(store.campaign_deliveries(cid, limit=MAX_DELIVERY_PAGE)[0]) == 9
