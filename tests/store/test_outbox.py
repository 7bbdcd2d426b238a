"""The outbox: written before sending, claimed once, kept in order per chat, never deleted."""

from __future__ import annotations

import threading

import pytest

from bot.store import Store
from bot.store.repo import NewOutbound


def _put(store: Store, chat: str, *texts: str, **kw: object) -> list[int]:
    rows = store.outbox_put([NewOutbound(chat, text, **kw) for text in texts])  # type: ignore[arg-type]
    return [r.id for r in rows]


def test_put_claim_sent_keeps_everything(store: Store) -> None:
    keyboard = {"inline_keyboard": [[{"text": "举报", "callback_data": "/report_scam"}]]}
    [first] = store.outbox_put(
        [NewOutbound("-1001", "⚠️ 提醒大家", "warning", keyboard, reply_to=7)]
    )
    assert (first.status, first.attempts, first.reply_markup) == ("pending", 0, keyboard)
    [claimed] = store.outbox_claim()
    assert claimed.id == first.id and claimed.status == "sending"
    assert store.outbox_claim() == []  # claimed once
    store.outbox_sent(first.id, 555)
    row = store.outbox_get(first.id)
    assert row is not None
    assert (row.status, row.attempts, row.external_message_id, row.reply_to) == ("sent", 1, 555, 7)
    assert row.sent_at is not None
    assert store.outbox_counts() == {"sent": 1}


def test_a_chat_keeps_its_order_while_a_message_waits(store: Store) -> None:
    a1, a2 = _put(store, "1", "第一条", "第二条")
    (b1,) = _put(store, "2", "别的群")
    first = store.outbox_claim(limit=1)
    assert [m.id for m in first] == [a1]
    # a1 is in flight: chat 1 is held back, chat 2 is not
    assert [m.id for m in store.outbox_claim()] == [b1]
    store.outbox_retry(a1, "NetworkError: down", delay_seconds=3600)
    assert store.outbox_claim() == []  # a2 may not overtake a1
    store.outbox_retry(a1, "NetworkError: down", delay_seconds=0)
    assert [m.id for m in store.outbox_claim()] == [a1, a2]
    row = store.outbox_get(a1)
    assert row is not None and row.attempts == 2 and row.last_error == "NetworkError: down"


def test_release_and_fail_and_move(store: Store) -> None:
    a1, a2 = _put(store, "-5", "一", "二")
    store.outbox_claim()
    store.outbox_release([a2])
    store.outbox_fail(a1, "Forbidden: bot was kicked")
    assert [m.id for m in store.outbox_claim()] == [a2]  # a failed message does not hold back
    store.outbox_retry(a2, "ChatMigrated", 0)
    store.outbox_move("-5", "-1005")
    [moved] = store.outbox_claim()
    assert moved.chat_external_id == "-1005"
    failed = store.outbox_get(a1)
    assert failed is not None and failed.status == "failed" and failed.chat_external_id == "-5"


def test_a_dedupe_key_is_put_once(store: Store) -> None:
    first = _put(store, "9", "第3号举报的答复", purpose="answer", dedupe_key="answer:3:0")
    again = _put(store, "9", "第3号举报的答复", purpose="answer", dedupe_key="answer:3:0")
    assert first == again
    assert store.outbox_counts() == {"pending": 1}


def test_crashed_claims_are_requeued(store: Store) -> None:
    (m,) = _put(store, "3", "回复")
    store.outbox_claim()
    assert store.outbox_requeue_stale(3600) == 0
    assert store.outbox_requeue_stale(0) == 1
    assert [r.id for r in store.outbox_claim()] == [m]


def test_bad_messages_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="text"):
        store.outbox_put([NewOutbound("1", "  ")])
    with pytest.raises(ValueError, match="purpose"):
        store.outbox_put([NewOutbound("1", "好", purpose="spam")])
    assert store.outbox_counts() == {}


def test_concurrent_claimers_keep_each_chat_in_order(store: Store) -> None:
    """Four senders drain 10 chats × 8 messages: each message once, and within a chat each
    claim starts after the previous one was finished."""
    for chat in range(10):
        _put(store, str(chat), *(f"消息{i}" for i in range(8)))
    order: dict[str, list[int]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        while batch := store.outbox_claim(limit=3):
            for message in batch:
                with lock:
                    order.setdefault(message.chat_external_id, []).append(message.id)
                store.outbox_sent(message.id, None)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.outbox_counts() == {"sent": 80}
    assert all(ids == sorted(ids) and len(ids) == 8 for ids in order.values())
