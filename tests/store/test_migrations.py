"""The Alembic migrations: up to head, down to base and up again, on both databases."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.store import db
from bot.store.models import Base

TABLES = {t.name for t in Base.metadata.sorted_tables}


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_a_new_sqlite_file_is_migrated_to_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}"
    assert db.current(url) is None
    db.upgrade(url)
    assert db.current(url) == db.head() == "0004"
    assert _tables(url) == TABLES


def test_down_to_base_and_up_again(db_url: str) -> None:
    assert db.current(db_url) == db.head()
    assert _tables(db_url) == TABLES
    db.downgrade(db_url, "base")
    assert db.current(db_url) is None
    assert _tables(db_url) == set()
    db.upgrade(db_url)
    assert db.current(db_url) == db.head()
    assert _tables(db_url) == TABLES


def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    assert _differences(db_url) == []


def test_constraint_names_follow_the_convention(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        inspector = sa.inspect(engine)
        assert inspector.get_pk_constraint("reports")["name"] == "pk_reports"
        fks = {fk["name"] for fk in inspector.get_foreign_keys("report_indicators")}
        assert fks == {
            "fk_report_indicators_report_id_reports",
            "fk_report_indicators_indicator_id_indicators",
        }
        checks = {c["name"] for c in inspector.get_check_constraints("areas")}
        assert "ck_areas_level" in checks
        uniques = {u["name"] for u in inspector.get_unique_constraints("indicators")}
        assert uniques == {"uq_indicators_value_hash"}
    finally:
        engine.dispose()


def test_upgrading_twice_changes_nothing(db_url: str) -> None:
    db.upgrade(db_url)
    assert db.current(db_url) == db.head()
