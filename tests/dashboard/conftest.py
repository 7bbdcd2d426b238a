"""Real databases for the dashboard tests (SQLite and PostgreSQL), as for the store's."""

from __future__ import annotations

from tests.store.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    db_url,
    postgres_url,
    sqlite_template,
    store,
)
