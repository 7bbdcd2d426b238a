"""Engines: URL resolution, SQLite connection settings, PostgreSQL driver and pool settings."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bot.settings import PROJECT_ROOT
from bot.store import db


def test_relative_sqlite_path_is_taken_from_the_project_root() -> None:
    url = db.resolve_url("sqlite:///data/x.db")
    assert url.database == str(PROJECT_ROOT / "data" / "x.db")


def test_absolute_and_memory_sqlite_urls_are_kept() -> None:
    assert db.resolve_url("sqlite:////tmp/a/b.db").database == "/tmp/a/b.db"
    assert db.resolve_url("sqlite://").database in (None, "")
    assert db.resolve_url("sqlite:///:memory:").database == ":memory:"


def test_postgresql_urls_use_psycopg_3() -> None:
    url = db.resolve_url("postgresql://u:p@h:5433/d")
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port, url.database, url.password) == ("h", 5433, "d", "p")
    assert db.resolve_url("postgresql+psycopg://h/d").drivername == "postgresql+psycopg"


def test_sqlite_engine_creates_the_folder_and_sets_the_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "x.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 5000
            assert pragma("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_write_transactions_begin_immediate(tmp_path: Path) -> None:
    """A writer takes the lock at BEGIN, so a second writer waits rather than racing it."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = db.make_engine(url)
    second = db.make_engine(url, busy_timeout_ms=50)
    try:
        with first.connect() as a, second.connect() as b:
            a.execution_options(sqlite_begin="IMMEDIATE").begin()
            try:
                b.execution_options(sqlite_begin="IMMEDIATE").begin()
            except sa.exc.OperationalError as exc:
                assert "locked" in str(exc.orig)
            else:
                raise AssertionError("the second writer got the lock")
            b.rollback()
            b.exec_driver_sql("SELECT 1").scalar()  # readers are not blocked
            a.rollback()
    finally:
        first.dispose()
        second.dispose()


def test_postgresql_engine_pings_pooled_connections() -> None:
    engine = db.make_engine("postgresql://postgres@127.0.0.1:5432/test")
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool._pre_ping
    finally:
        engine.dispose()
