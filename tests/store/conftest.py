"""Real databases for the store tests: a temporary SQLite file and a PostgreSQL database.

Every test taking ``db_url`` or ``store`` runs twice, once per database. The PostgreSQL database
``antifraud_test_<random>`` is created for the test session on the server named by
``TEST_POSTGRES_URL`` (default: the local ``test`` database's server) and dropped at the end;
tables are emptied between tests. An unreachable server fails the PostgreSQL tests, unless
``ANTIFRAUD_SKIP_POSTGRES=1`` says to skip them.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from bot.store import Store, db
from bot.store.models import Base

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _libpq_url(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this session, migrated to head; dropped afterwards."""
    if os.environ.get("ANTIFRAUD_SKIP_POSTGRES") == "1":
        pytest.skip("PostgreSQL tests skipped (ANTIFRAUD_SKIP_POSTGRES=1)")
    server = sa.make_url(os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    try:
        admin = psycopg.connect(_libpq_url(server), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip()
    else:
        reason = None
    if reason is not None:
        pytest.fail(
            f"PostgreSQL at {server.render_as_string(hide_password=True)} is unreachable: "
            f"{reason}\nStart it, point TEST_POSTGRES_URL at a server where this user may "
            "CREATE DATABASE, or set ANTIFRAUD_SKIP_POSTGRES=1 to skip these tests.",
            pytrace=False,
        )
    name = f"antifraud_test_{secrets.token_hex(6)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = _libpq_url(server.set(database=name))
    try:
        db.upgrade(url)
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    db.upgrade(f"sqlite:///{path}")
    return path


def _empty_postgres(url: str) -> None:
    db.upgrade(url)  # a migration test may have left it elsewhere
    engine = db.make_engine(url)
    try:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database of either kind."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url, retry_seconds=10.0) as the_store:
        yield the_store
