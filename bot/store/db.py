"""Engines and migrations, driven from code: no ``alembic.ini`` to keep in step with the settings.

One ``DATABASE_URL`` names the database. SQLite (the default, a file under ``data/``) and
PostgreSQL both work; this module hides what differs between them:

- a relative SQLite path is taken from the project root, whatever the working directory, and
  its folder is created;
- SQLite connections run in WAL mode (readers do not block the writer), wait up to
  ``busy_timeout`` for a lock instead of failing at once, and enforce foreign keys. Transactions
  are begun by us, not by the driver: ``BEGIN`` for reads and ``BEGIN IMMEDIATE`` for writes
  (``Connection.execution_options(sqlite_begin="IMMEDIATE")``), so a writer takes the lock up
  front and two writers never both read a row and then both change it;
- ``postgresql://`` means psycopg 3, and pooled connections are tested before use.

Statement parameters are left out of SQLAlchemy's error messages: they hold residents' texts.

Migrations run with SQLite's foreign keys switched off (Alembic's batch mode copies tables) and
are checked with ``PRAGMA foreign_key_check`` before they commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from bot.settings import PROJECT_ROOT

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5


class MigrationError(RuntimeError):
    """A migration left the database inconsistent (it was rolled back)."""


def resolve_url(url: str | URL) -> URL:
    """The URL to connect to: relative SQLite paths made absolute, PostgreSQL on psycopg 3."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.is_absolute():
                parsed = parsed.set(database=str(PROJECT_ROOT / path))
    elif parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url`` with the connection settings described in the module docstring."""
    resolved = resolve_url(url)
    if resolved.get_backend_name() == "sqlite":
        return _sqlite_engine(resolved, busy_timeout_ms)
    connect_args: dict[str, Any] = {}
    if resolved.get_backend_name() == "postgresql" and "connect_timeout" not in resolved.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return sa.create_engine(
        resolved, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args
    )


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, hide_parameters=True)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN (before DML only, never before a SELECT) is turned off;
        # _on_begin below opens every transaction instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"sqlite_begin must be DEFERRED, IMMEDIATE or EXCLUSIVE, not {mode}")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction for migrations; SQLite's foreign keys off until it ends."""
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        # The pragma is ignored inside a transaction, so it goes to the driver's connection
        # before SQLAlchemy begins one.
        driver: Any = connection.connection.driver_connection
        if sqlite:
            driver.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.execution_options(sqlite_begin="IMMEDIATE").begin():
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise MigrationError(f"foreign keys broken by the migration: {broken}")
        finally:
            if sqlite:
                driver.execute("PRAGMA foreign_keys=ON")


def _run(url: str | URL, action: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with migration_connection(engine) as connection:
            getattr(command, action)(_alembic_config(connection), revision)
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (creating the SQLite file if needed)."""
    _run(url, "upgrade", revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: no tables left)."""
    _run(url, "downgrade", revision)


def current(url: str | URL) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision in ``migrations/versions``."""
    revision = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if revision is None:
        raise MigrationError("no migrations found")
    return revision
