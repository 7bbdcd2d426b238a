"""Waiting out a locked or absent database, then giving up with StoreUnavailable."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.store import Store, StoreUnavailable, db

from .helpers import make_report


def _hold_lock(path: Path, seconds: float, held: threading.Event) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute(
            "INSERT INTO audit_log (at, actor, action, target_type, details)"
            " VALUES ('2024-01-01 00:00:00', 'test', 'lock', 'none', '{}')"
        )
        held.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
    finally:
        connection.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    path = tmp_path / "locked.db"
    db.upgrade(f"sqlite:///{path}")
    return path


def _locked_for(path: Path, seconds: float) -> threading.Thread:
    held = threading.Event()
    thread = threading.Thread(target=_hold_lock, args=(path, seconds, held))
    thread.start()
    assert held.wait(5)
    return thread


def test_a_short_lock_is_waited_for(sqlite_path: Path) -> None:
    with Store(f"sqlite:///{sqlite_path}", retry_seconds=3.0) as store:
        holder = _locked_for(sqlite_path, 1.0)
        started = time.monotonic()
        report = store.add_report(make_report())
        waited = time.monotonic() - started
        holder.join()
        assert waited >= 0.8
        assert store.get_report(report.id) is not None
        assert store.count_reports() == 1


def test_a_long_lock_gives_store_unavailable(sqlite_path: Path) -> None:
    with Store(f"sqlite:///{sqlite_path}", retry_seconds=0.5) as store:
        holder = _locked_for(sqlite_path, 1.5)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            store.inbox_put("r1", "rest", "hello")
        assert time.monotonic() - started < 1.4
        holder.join()
        assert store.inbox_pending_count() == 0  # nothing half-written
        store.inbox_put("r1", "rest", "hello")  # and all is well once the lock is gone
        assert store.inbox_pending_count() == 1


def test_transient_errors_are_retried_with_back_off(sqlite_path: Path) -> None:
    calls: list[float] = []

    def flaky(_session: object) -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise sa.exc.OperationalError(
                "BEGIN", {}, sqlite3.OperationalError("database is locked")
            )
        return "landed"

    with Store(f"sqlite:///{sqlite_path}", retry_seconds=2.0) as store:
        assert store.run_in(flaky, write=True) == "landed"
    assert len(calls) == 3
    assert calls[2] - calls[1] > calls[1] - calls[0]  # the second pause is longer


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'empty.db'}", retry_seconds=5.0) as store:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            store.inbox_pending_count()
        assert time.monotonic() - started < 1.0


def test_an_unreachable_postgresql_gives_store_unavailable() -> None:
    with Store("postgresql://postgres@127.0.0.1:1/nothing", retry_seconds=0.3) as store:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"0\.3 s"):
            store.resident("r1")
        assert time.monotonic() - started < 3.0
