"""Transactions for the repository: one per call, retried while the database is busy or away.

``Transactions.run_in`` gives ``work`` a session in a transaction (``BEGIN IMMEDIATE`` on SQLite
when it writes) and commits. When that fails for a reason that may pass (a lock held too long,
a lost connection, a deadlock, a server restarting) it runs ``work`` again after a pause that
doubles up to a second, until ``retry_seconds`` have gone; then it raises ``StoreUnavailable``.
Other errors are raised at once. SQLite's own wait for a lock (``busy_timeout``) is capped by the
same budget, so a caller never waits much longer than ``retry_seconds``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot.store.db import SQLITE_BUSY_TIMEOUT_MS, make_engine
from bot.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Self = TypeVar("Self", bound="Transactions")

_FIRST_RETRY_DELAY = 0.05
_LONGEST_RETRY_DELAY = 1.0
_SHORTEST_BUSY_TIMEOUT_MS = 50

# PostgreSQL error classes worth another try: connection, transaction rollback (deadlock,
# serialization), insufficient resources, operator intervention (shutdown, cancel), system.
_PG_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_PG_LOCK_NOT_AVAILABLE = "55P03"


def _transient(exc: DBAPIError) -> bool:
    """Whether the failed transaction may succeed if run again (locks, lost connections)."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return "locked" in message or "busy" in message
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    if not isinstance(orig, psycopg.OperationalError):
        return False
    sqlstate = orig.sqlstate
    if sqlstate is None:  # no answer from the server at all: refused, reset, timed out
        return True
    return sqlstate[:2] in _PG_TRANSIENT_CLASSES or sqlstate == _PG_LOCK_NOT_AVAILABLE


def _reason(exc: DBAPIError) -> str:
    """The driver's message alone: no statement, no parameters."""
    first_line = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
    return f"{type(exc.orig).__name__}: {first_line}"


class Transactions:
    """An engine, its sessions, and the retrying transaction runner."""

    def __init__(self, url: str, *, retry_seconds: float = 5.0) -> None:
        if retry_seconds < 0:
            raise ValueError("retry_seconds must not be negative")
        self.retry_seconds = retry_seconds
        busy_ms = min(
            SQLITE_BUSY_TIMEOUT_MS, max(_SHORTEST_BUSY_TIMEOUT_MS, int(retry_seconds * 1000))
        )
        self.engine = make_engine(url, busy_timeout_ms=busy_ms)
        self.dialect = self.engine.dialect.name
        self._sqlite_write_lock = threading.Lock()
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run_in(self, work: Callable[[Session], T], *, write: bool) -> T:
        """Run ``work`` in one transaction, again after transient failures, within the budget."""
        deadline = time.monotonic() + self.retry_seconds
        delay = _FIRST_RETRY_DELAY
        make_session = self._writer if write else self._reader
        # SQLite admits one writer at a time: this process's writers queue on a lock, in order,
        # instead of polling in SQLite's busy handler (which starves some of them under load).
        serialise = (
            self._sqlite_write_lock if write and self.dialect == "sqlite" else nullcontext()
        )
        while True:
            try:
                with serialise, make_session() as session, session.begin():
                    return work(session)
            except DBAPIError as exc:
                if not _transient(exc):
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreUnavailable(
                        f"the database did not answer within {self.retry_seconds:g} s "
                        f"({_reason(exc)})"
                    ) from exc
                log.warning("store: %s; retrying", _reason(exc))
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, _LONGEST_RETRY_DELAY)

    def _insert(self, model: type[Any]) -> Any:
        table = model.__table__
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
