"""Campaign pushes through the real python-telegram-bot to the sandbox Bot API.

The bot is built as the product builds it (``ExtBot`` with ``AIORateLimiter``); the planner runs
on the test's clock, the herald sends for real over HTTP, and the sandbox's chats show what each
group received.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from telegram.ext import AIORateLimiter, ExtBot

from bot.sandbox import SandboxState, create_app
from bot.store import Store
from bot.store.campaigns import INTERRUPTED
from bot.store.types import utcnow
from campaigns.delivery import Herald
from campaigns.planner import Planner
from tests.campaigns.grid import MONDAY, campaign, make_grid
from tests.sandbox.helpers import TOKEN, Control, Served, serve

DUE = MONDAY + timedelta(hours=10)


def _clock():  # type: ignore[no-untyped-def]
    """The test's clock: it reads DUE at the start of the test and runs at the real pace."""
    offset = DUE - utcnow()
    return lambda: utcnow() + offset


PEOPLE = {"id": 7900, "first_name": "赵阿姨"}


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Served]:
    with serve(create_app(SandboxState(TOKEN))) as served:
        yield served


@pytest.fixture
async def control(sandbox_server: Served) -> AsyncIterator[Control]:
    client = Control(sandbox_server.url)
    await client.post("/sandbox/reset", {})
    yield client
    await client.aclose()


@pytest.fixture
async def bot(sandbox_server: Served, control: Control) -> AsyncIterator[ExtBot]:
    """The bot as ``bot.telegram.app`` builds it: rate limited, RetryAfter retried."""
    the_bot = ExtBot(
        TOKEN,
        base_url=f"{sandbox_server.url}/sandbox/bot",
        base_file_url=f"{sandbox_server.url}/sandbox/file/bot",
        rate_limiter=AIORateLimiter(max_retries=5),
    )
    async with the_bot:
        yield the_bot


async def _open_groups(control: Control, external_ids: list[str]) -> None:
    """Groups exist in the sandbox once someone has written in them."""
    for external in external_ids:
        await control.post(
            "/sandbox/send",
            {
                "chat": {"id": int(external), "type": "supergroup", "title": f"群{external}"},
                "from": PEOPLE,
                "text": "大家好",
            },
        )


async def _received(control: Control, external: str) -> list[str]:
    data = await control.get(f"/sandbox/chats/{external}/messages")
    return [m["text"] for m in data["messages"] if m.get("from_bot")]


def _many_groups(store: Store, grid_id: int, leader: int, count: int, first: int) -> list[str]:
    ids = []
    for i in range(count):
        external = str(first - i)
        store.register_group("telegram", external, grid_id, ["elderly"], leader, f"楼{i}")
        ids.append(external)
    return ids


@pytest.mark.anyio
async def test_only_the_targeted_groups_receive_the_push_once(
    store: Store, control: Control, bot: ExtBot
) -> None:
    grid = make_grid(store)
    await _open_groups(control, list(grid.external.values()))
    store.set_campaigns_opt_out("telegram", grid.external["building1"], True, "test")
    made = store.add_campaign(
        campaign(area_id=grid.grid1, audience_tags=("elderly",)), grid.leader1
    )
    clock = _clock()
    Planner(store, templates={}).tick(clock())
    herald = Herald(store, bot, rate=20, clock=clock)
    assert await herald.drain() == 1
    assert await herald.drain() == 0  # nothing left; nothing sent again
    got = {name: await _received(control, ext) for name, ext in grid.external.items()}
    assert len(got["elderly1"]) == 1 and "冒充客服" in got["elderly1"][0]
    assert "1网格" in got["elderly1"][0]  # a leader's own text says which grid it is from
    assert got["building1"] == []  # opted out
    assert got["students1"] == [] and got["elderly2"] == []  # not targeted
    report = store.campaign_report(made.id)
    assert report.counts == {"sent": 1, "skipped": 1} and report.skipped == {"opted_out": 1}


@pytest.mark.anyio
async def test_a_stop_in_the_middle_and_a_restart_send_nothing_twice_and_lose_nothing(
    store: Store, control: Control, bot: ExtBot
) -> None:
    grid = make_grid(store)
    groups = _many_groups(store, grid.grid2, grid.leader2, 40, first=-1004000)
    await _open_groups(control, [*groups, grid.external["elderly2"]])
    made = store.add_campaign(campaign(area_id=grid.grid2), grid.leader2)
    clock = _clock()
    Planner(store, templates={}).tick(clock())
    stop = asyncio.Event()
    first = Herald(store, bot, rate=25, clock=clock)
    running = asyncio.create_task(first.run(stop))
    while first.stats["sent"] < 10:
        await asyncio.sleep(0.02)
    stop.set()  # as on SIGTERM: what is on the way finishes, the rest stays queued
    await running
    counts = store.delivery_counts(made.id)
    assert 10 <= counts["sent"] < 41 and counts.get("queued", 0) == 41 - counts["sent"]
    second = Herald(store, bot, rate=25, clock=clock)
    await second.run_once()
    assert store.delivery_counts(made.id) == {"sent": 41}
    per_group = Counter()
    for external in [*groups, grid.external["elderly2"]]:
        per_group[len(await _received(control, external))] += 1
    assert per_group == {1: 41}


@pytest.mark.anyio
async def test_a_crash_mid_send_repeats_nothing_and_accounts_for_every_push(
    store: Store, control: Control, bot: ExtBot
) -> None:
    grid = make_grid(store)
    groups = _many_groups(store, grid.grid2, grid.leader2, 30, first=-1005000)
    await _open_groups(control, [*groups, grid.external["elderly2"]])
    made = store.add_campaign(campaign(area_id=grid.grid2), grid.leader2)
    clock = _clock()
    Planner(store, templates={}).tick(clock())
    first = Herald(store, bot, rate=30, in_flight=4, clock=clock)
    running = asyncio.create_task(first.run(asyncio.Event()))
    while first.stats["sent"] < 8:
        await asyncio.sleep(0.01)
    running.cancel()  # killed: sends on the way are cut off, their outcome never recorded
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.sleep(1.0)  # a killed process has no threads left: let this one's finish
    second = Herald(store, bot, rate=30, clock=clock)
    await second.run_once()  # a new process: interrupted pushes failed, the rest sent
    counts = store.delivery_counts(made.id)
    assert counts.get("queued", 0) == 0 and counts.get("sending", 0) == 0
    assert counts["sent"] + counts.get("failed", 0) == 31
    assert counts.get("failed", 0) <= 4  # at most what was on the way
    for external in [*groups, grid.external["elderly2"]]:
        assert len(await _received(control, external)) <= 1  # never twice
    report = store.campaign_report(made.id)
    assert set(report.failed) <= {"interrupted"}
    assert all(reason == INTERRUPTED for reason in _failed_reasons(store, made.id))


def _failed_reasons(store: Store, campaign_id: int) -> list[str]:
    import sqlalchemy as sa

    from bot.store.models import CampaignDelivery

    return store.run_in(
        lambda s: list(
            s.execute(
                sa.select(CampaignDelivery.reason).where(
                    CampaignDelivery.campaign_id == campaign_id,
                    CampaignDelivery.status == "failed",
                )
            ).scalars()
        ),
        write=False,
    )


@pytest.mark.anyio
async def test_flood_control_is_honoured_and_nothing_is_lost_to_it(
    store: Store, control: Control, bot: ExtBot
) -> None:
    grid = make_grid(store)
    groups = _many_groups(store, grid.grid2, grid.leader2, 12, first=-1006000)
    await _open_groups(control, [*groups, grid.external["elderly2"]])
    made = store.add_campaign(campaign(area_id=grid.grid2), grid.leader2)
    clock = _clock()
    Planner(store, templates={}).tick(clock())
    # Telegram answers 429 "retry after 1 s" eight times: more than the rate limiter's five
    # retries of the one push on the way, so the herald itself sees a RetryAfter
    await control.post(
        "/sandbox/faults", {"method": "sendMessage", "status": 429, "retry_after": 1, "times": 8}
    )
    herald = Herald(store, bot, rate=25, in_flight=1, clock=clock)
    await herald.run_once(timeout=30)
    assert store.delivery_counts(made.id) == {"sent": 13}
    assert herald.stats["retry_after"] >= 1  # reached the herald, which waited and went on
    for external in groups:
        assert len(await _received(control, external)) == 1


@pytest.mark.anyio
async def test_a_group_that_removed_the_bot_is_failed_with_the_reason(
    store: Store, control: Control, bot: ExtBot
) -> None:
    grid = make_grid(store)
    await _open_groups(control, list(grid.external.values()))
    await bot.leave_chat(int(grid.external["students1"]))
    made = store.add_campaign(campaign(area_id=grid.grid1), grid.leader1)
    clock = _clock()
    Planner(store, templates={}).tick(clock())
    await Herald(store, bot, rate=25, clock=clock).drain()
    report = store.campaign_report(made.id)
    assert report.counts == {"sent": 2, "failed": 1}
    assert report.failed == {"Forbidden": 1}
