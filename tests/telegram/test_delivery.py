"""What the bot sends on its own, and what it sends when Telegram fails: urgent alerts to grid
leaders and the staff chat, answers to reporters, and the outbox keeping every message."""

from __future__ import annotations

import time

import pytest

from bot.store.repo import Store
from tests.bot_under_test import STAFF_CHAT

pytestmark = pytest.mark.rasa

SEED = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"


def _outbox_rows(store: Store, chat: int) -> list:
    rows = []
    for i in range(1, 10_000):
        row = store.outbox_get(i)
        if row is None:
            break
        if row.chat_external_id == str(chat):
            rows.append(row)
    return rows


def test_money_transferred_alerts_the_grid_leader_and_staff(telegram_bot, stack):
    store = Store(stack.settings.database_url)
    village = store.add_area("community", "幸福村")
    grid = store.add_area("grid", "幸福村7组", village.id)
    leader = store.add_user("leader7", "grid_leader", "网格长老陈", telegram_user_id=3001)
    store.add_leader(grid.id, leader.id)
    # The leader and the staff chat have talked to the bot, so it may write to them.
    telegram_bot.send(
        chat={"id": 3001, "type": "private"},
        **{"from": {"id": 3001, "first_name": "老陈"}},
        text="你好",
    )
    telegram_bot.wait_bot(3001, 1)
    staff_chat = {"id": STAFF_CHAT, "type": "supergroup", "title": "反诈中心值班群"}
    telegram_bot.send(
        chat=staff_chat, **{"from": {"id": 3002, "first_name": "值班民警"}}, text="值班"
    )

    resident = {"id": 3003, "first_name": "钱阿姨"}
    private = {"id": 3003, "type": "private"}
    store.resident("tg:3003:3003", "telegram")
    store.set_resident_area("tg:3003:3003", grid.id)
    telegram_bot.send(chat=private, **{"from": resident}, text="我被骗了，刚才已经转账了五千块")
    telegram_bot.wait_bot(private["id"], 1)

    alerts = telegram_bot.wait_bot(3001, 2, timeout=30)
    assert "🚨" in alerts[-1]["text"]
    staff = telegram_bot.wait_bot(STAFF_CHAT, 1, timeout=30)
    assert staff[-1]["text"] == alerts[-1]["text"]


def test_a_verdict_is_answered_to_the_reporter(telegram_bot, stack):
    private = {"id": 3101, "type": "private"}
    telegram_bot.send(chat=private, **{"from": {"id": 3101, "first_name": "郑先生"}}, text=SEED)
    [warning] = telegram_bot.wait_bot(private["id"], 1)
    store = Store(stack.settings.database_url)
    [report] = store.reports_of("tg:3101:3101")
    assert f"第{report.id}号" in warning["text"]
    store.transition(report.id, "confirmed", "cli", verdict_scam_type="rebate", note="核实")
    answer = telegram_bot.wait_bot(private["id"], 2, timeout=30)[-1]
    assert f"第{report.id}号" in answer["text"] and "刷单返利" in answer["text"]
    deadline = time.monotonic() + 10
    while store.get_report(report.id).status != "answered" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.get_report(report.id).status == "answered"
    time.sleep(11)  # the answers job runs again: the reporter is told once
    assert len(telegram_bot.bot_messages(private["id"])) == 2


def test_telegram_errors_are_retried_in_order_and_kept(telegram_bot, stack):
    store = Store(stack.settings.database_url)
    private = {"id": 3201, "type": "private"}
    who = {"id": 3201, "first_name": "冯奶奶"}
    telegram_bot.send(chat=private, **{"from": who}, text="你好")
    telegram_bot.wait_bot(private["id"], 1)

    # Two 502s: the reply waits in the outbox, the next reply queues behind it, both arrive in
    # the order they were written.
    telegram_bot.fault(method="sendMessage", status=502, times=2)
    telegram_bot.send(chat=private, **{"from": who}, text=SEED)
    telegram_bot.send(chat=private, **{"from": who}, text="谢谢")
    said = telegram_bot.wait_bot(private["id"], 3, timeout=40)
    assert "刷单返利" in said[1]["text"]
    rows = _outbox_rows(store, private["id"])
    assert [r.status for r in rows] == ["sent"] * len(rows)
    assert [r.external_message_id for r in rows] == sorted(r.external_message_id for r in rows)
    retried = [r for r in rows if r.attempts > 1]
    assert retried and "Bad Gateway" in (retried[0].last_error or "")

    # Refused for good (403: the bot was blocked): kept as failed with the reason, not retried.
    telegram_bot.fault(
        method="sendMessage",
        status=403,
        description="Forbidden: bot was blocked by the user",
        times=1,
    )
    telegram_bot.send(chat=private, **{"from": who}, text="你好")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        failed = [r for r in _outbox_rows(store, private["id"]) if r.status == "failed"]
        if failed:
            break
        time.sleep(0.2)
    assert failed and "blocked" in (failed[0].last_error or "")
