"""The store-first inbox: claims are exclusive, failures go back, crashed claims are requeued."""

from __future__ import annotations

import threading
import time

import pytest

from bot.store import NotFound, Store


def test_put_claim_done(store: Store) -> None:
    first = store.inbox_put("r1", "rest", "你好", payload={"locale": "zh"})
    second = store.inbox_put("tg:5:6", "telegram", "这是骗子吗", chat_external_id="5")
    assert store.inbox_pending_count() == 2
    claimed = store.inbox_claim(limit=1)
    assert [m.id for m in claimed] == [first]
    assert claimed[0].status == "processing"
    assert claimed[0].payload == {"locale": "zh"}
    assert claimed[0].claimed_at is not None
    assert store.inbox_pending_count() == 1
    store.inbox_done(first, [{"recipient_id": "r1", "text": "您好"}])
    done = store.inbox_get(first)
    assert done is not None
    assert (done.status, done.replies) == ("done", [{"recipient_id": "r1", "text": "您好"}])
    assert done.processed_at is not None
    rest = store.inbox_claim()
    assert [(m.id, m.chat_external_id) for m in rest] == [(second, "5")]
    assert store.inbox_claim() == []
    with pytest.raises(NotFound):
        store.inbox_done(9999, [])


def test_retry_fail_and_requeue(store: Store) -> None:
    message = store.inbox_put("r1", "rest", "hello")
    store.inbox_claim()
    store.inbox_retry(message, "Rasa did not answer")
    again = store.inbox_get(message)
    assert again is not None
    assert (again.status, again.attempts, again.last_error) == (
        "pending",
        1,
        "Rasa did not answer",
    )
    store.inbox_claim()
    store.inbox_fail(message, "x" * 5000)
    failed = store.inbox_get(message)
    assert failed is not None
    assert (failed.status, failed.attempts, len(failed.last_error or "")) == ("failed", 2, 2000)
    stale = store.inbox_put("r2", "rest", "left by a crash")
    store.inbox_claim()
    assert store.inbox_requeue_stale(60) == 0
    time.sleep(0.05)
    assert store.inbox_requeue_stale(0.01) == 1
    assert [m.id for m in store.inbox_claim()] == [stale]


def test_two_workers_never_claim_the_same_message(store: Store) -> None:
    ids = {store.inbox_put(f"r{i}", "rest", f"消息{i}") for i in range(60)}
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def work(slot: int) -> None:
        barrier.wait()
        while batch := store.inbox_claim(limit=3):
            claimed[slot].extend(m.id for m in batch)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == sorted(ids)
    assert store.inbox_pending_count() == 0


def test_claim_one_message(store: Store) -> None:
    message = store.inbox_put("r1", "rest", "马上要转账了")
    other = store.inbox_put("r2", "rest", "别的消息")
    claimed = store.inbox_claim_one(message)
    assert claimed is not None and (claimed.id, claimed.status) == (message, "processing")
    assert store.inbox_claim_one(message) is None
    assert store.inbox_claim_one(9999) is None
    assert [m.id for m in store.inbox_claim()] == [other]


def _race_to_claim(store: Store, message_id: int) -> list[object]:
    barrier = threading.Barrier(2)
    results: list[object] = []

    def claim() -> None:
        barrier.wait()
        results.append(store.inbox_claim_one(message_id))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_claim_one_is_exclusive_across_threads(store: Store) -> None:
    for _ in range(5):
        results = _race_to_claim(store, store.inbox_put("r1", "rest", "hello"))
        assert sorted(r is None for r in results) == [False, True]
