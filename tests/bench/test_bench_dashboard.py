"""The dashboard part of ``make bench`` (scripts/bench_dashboard.py): its pieces, and one tiny
run (300 reports, 10 requests a page) on SQLite and PostgreSQL through the real app, checked for
what the pages answered and what the bulk filling wrote, not for how fast it was."""

from __future__ import annotations

import copy
import json
import os
import secrets
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from bot.settings import PROJECT_ROOT
from bot.store import Store
from bot.store.models import (
    REPORT_STATUSES,
    Indicator,
    Report,
    ReportEvent,
    ReportIndicator,
    ReportMinhashBand,
)

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import bench_dashboard as bd

REPORTS = 300
REQUESTS = 10


def test_a_plan_checks_its_numbers() -> None:
    assert bd.Plan().sizes() == [5000, 10000, 20000]
    assert bd.Plan().requests_at(20000) == 200 and bd.Plan().requests_at(5000) == 50
    assert bd.Plan.tiny().sizes() == [150, 300]
    assert bd.Plan.tiny(requests=2).requests_at(150) == 5  # a few requests at the least
    for bad in ({"reports": 5}, {"requests": 0}, {"steps": (0.5,)}, {"steps": (0.0, 1.0)}):
        with pytest.raises(ValueError):
            bd.Plan(**bad)  # type: ignore[arg-type]


def test_what_the_pages_show_is_read_back() -> None:
    queue = '<p class="muted">共 72 条。</p>' + '<tr><td><a href="/reports/9">#9</a></td>' * 50
    assert bd.queue_shown(queue) == [72, 50]
    assert bd.queue_shown("<p>没有符合条件的报告。</p>") == [None, 0]
    assert (
        bd.heatmap_shown("<caption>居民举报 · 全部类型 · 星期 × 时段，共 1234 起</caption>")
        == 1234
    )
    assert bd.heatmap_shown("<p>还没有居民举报。</p>") is None
    assert bd.heading_id("<h1>报告 #41\n<span>") == 41
    assert bd.heading_id("<h1>审核队列</h1>") is None


def test_the_tally_counts_by_status_type_and_place() -> None:
    filed = [
        bd.Filed(1, "new", "loan", 10, (0, 0), frozenset({10})),
        bd.Filed(2, "assigned", "loan", 11, (0, 1), frozenset({11})),
        bd.Filed(3, "confirmed", "loan", 10, (0, 0), frozenset({10})),
        bd.Filed(4, "in_review", "rebate", None, (1, 0)),
        bd.Filed(5, "dismissed", "not_scam", 20, (2, 0), frozenset({20})),
        bd.Filed(6, "answered", "not_scam", 10, (2, 0), frozenset({10})),  # then told
        # from a group of area 20 by a resident of area 11: leaders of either see it
        bd.Filed(7, "new", "rebate", 20, (3, 0), frozenset({20, 11})),
    ]
    leader = frozenset({10, 11})
    assert bd.open_count(filed, None) == 4
    assert bd.open_count(filed, leader) == 3  # no place: only staff see it
    assert bd.open_count(filed, frozenset({20})) == 1
    assert bd.filtered_count(filed, None, "loan", frozenset({10})) == 1
    assert bd.filtered_count(filed, leader, "loan", leader) == 2
    assert bd.filtered_count(filed, frozenset({20}), "loan", leader) == 0
    assert bd.heatmap_count(filed, None) == 5  # neither the dismissed nor the ordinary one
    assert bd.heatmap_count(filed, leader) == 3  # the trends count each report at one place


def test_percentiles_of_the_latencies() -> None:
    assert bd.percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 3.0
    assert bd.percentile([5.0], 0.95) == 5.0
    figures = bd.summary([0.001 * i for i in range(1, 101)])
    assert figures["n"] == 100
    assert figures["p50_ms"] == pytest.approx(50.5) and figures["p95_ms"] == pytest.approx(96)


def _postgres_server() -> str | None:
    if os.environ.get("ANTIFRAUD_SKIP_POSTGRES") == "1":
        return None
    return os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A new SQLite file and, unless skipped, a new PostgreSQL database, as bench.py makes."""
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('bench-dashboard') / 'd.db'}"}
    server = _postgres_server()
    if server is not None:
        name = f"antifraud_bench_test_{secrets.token_hex(4)}"
        with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        urls["postgresql"] = server.rsplit("/", 1)[0] + "/" + name
    try:
        yield urls
    finally:
        if "postgresql" in urls:
            bd.drop_postgres(urls["postgresql"])
            with psycopg.connect(server, autocommit=True) as conn:  # type: ignore[arg-type]
                left = conn.execute(
                    "SELECT count(*) FROM pg_database WHERE datname = %s",
                    (urls["postgresql"].rsplit("/", 1)[1],),
                ).fetchone()
            assert left == (0,), "drop_postgres left the database behind"


@pytest.fixture(scope="module")
def result(databases: dict[str, str]) -> dict[str, Any]:
    return bd.run(bd.Plan.tiny(REPORTS, REQUESTS), databases)


def test_every_page_answered_and_showed_the_tally(
    result: dict[str, Any], databases: dict[str, str]
) -> None:
    assert list(result["databases"]) == list(databases)
    assert result["ok"], bd.problems(result)
    drawn = {
        json.dumps([r["statuses"], r["distinct_texts"], r["steps"][-1]["checks"]["queue_staff"]])
        for r in result["databases"].values()
    }
    assert len(drawn) == 1  # every database is filled with the same reports
    for r in result["databases"].values():
        assert [s["reports"] for s in r["steps"]] == [150, 300]
        assert sum(r["statuses"].values()) == REPORTS
        assert set(r["statuses"]) == set(REPORT_STATUSES)
        full = r["steps"][-1]
        checks = full["checks"]
        assert all(c["ok"] for c in checks.values())
        staff, leader = checks["queue_staff"]["shown"], checks["queue_leader"]["shown"]
        assert staff[0] > 50 and staff[1] == 50  # more than a page: the page holds 50
        assert 0 < leader[0] < staff[0]  # the leader sees their grid only
        filtered = checks["queue_filtered_staff"]["shown"]
        assert 0 < filtered[0] <= leader[0]
        assert checks["queue_filtered_leader"]["shown"] == filtered  # grid 1 is the leader's
        assert 0 < checks["trends_leader"]["shown"] < checks["trends_staff"]["shown"]
        assert full["popular_copies"] >= 5
        assert checks["report_popular"]["shown"]["exact"] == 5


def test_the_figures_are_sane(result: dict[str, Any]) -> None:
    for r in result["databases"].values():
        for step in r["steps"]:
            n = REQUESTS if step["reports"] == REPORTS else 5
            assert step["requests"] == n
            assert set(step["pages"]) == set(bd.PAGES)
            assert set(step["store"]) == {*bd.PAGES, "list_reports"}
            assert step["calls"] == 5
            for figures in [*step["pages"].values(), *step["store"].values()]:
                assert figures["n"] == (n if figures in step["pages"].values() else 5)
                assert 0 < figures["p50_ms"] <= figures["p95_ms"] < 60_000
            assert all(p["kb"] > 1 for p in step["pages"].values())
            assert step["fill_s"] > 0 and step["rss_mb"] > 50
        assert r["peak_rss_mb"] >= r["rss_mb"] > 50
        assert r["groups"] == 3 * 2 + 3 * 2  # two per grid, one per building
        assert r["distinct_texts"] > 50


def test_the_bulk_rows_are_those_the_store_writes(
    result: dict[str, Any], databases: dict[str, str]
) -> None:
    for url in databases.values():
        store = Store(url)
        try:
            assert store.count_reports() == REPORTS

            def counts(session: Any) -> dict[str, int]:
                def one(query: Any) -> int:
                    return int(session.execute(query).scalar_one())

                return {
                    "without_event": one(
                        sa.select(sa.func.count())
                        .select_from(Report)
                        .where(~sa.exists().where(ReportEvent.report_id == Report.id))
                    ),
                    "banded": one(
                        sa.select(sa.func.count(sa.distinct(ReportMinhashBand.report_id)))
                    ),
                    "bands": one(sa.select(sa.func.count()).select_from(ReportMinhashBand)),
                    "links": one(sa.select(sa.func.count()).select_from(ReportIndicator)),
                    "seen": one(sa.select(sa.func.sum(Indicator.seen_count))),
                }

            found = store.run_in(counts, write=False)
            assert found["without_event"] == 0
            assert found["banded"] == REPORTS and found["bands"] == 8 * REPORTS
            assert found["links"] > REPORTS // 2
            assert found["seen"] == found["links"]  # each sighting counted once, as add_report
            newest = store.list_reports(limit=REPORTS)
            reviewed = [r for r in newest if r.status in ("confirmed", "dismissed", "answered")]
            assert reviewed and all(r.reviewed_at and r.verdict_scam_type for r in reviewed)
            ages = [newest[0].created_at - r.created_at for r in newest]
            assert max(ages) <= timedelta(weeks=1, minutes=5)  # the tiny plan's one week
        finally:
            store.close()


def test_the_report_and_a_broken_check(result: dict[str, Any]) -> None:
    json.dumps(result)  # bench.json takes it as it is
    text = "\n".join(bd.markdown(result))
    assert f"## Staff dashboard: {REPORTS} reports" in text
    for _user, title in bd.PAGES.values():
        assert f"| {title} |" in text
    assert "plain `store.list_reports(limit=50)`" in text
    assert "FAILED" not in text and "grows by" in text
    broken = copy.deepcopy(result)
    name = next(iter(broken["databases"]))
    check = broken["databases"][name]["steps"][-1]["checks"]["queue_staff"]
    check.update(shown=[1, 1], ok=False)
    issues = bd.problems(broken)
    assert len(issues) == 1 and "queue_staff" in issues[0]
    assert "**Dashboard pages FAILED their checks:**" in "\n".join(bd.markdown(broken))


def test_a_missing_database_is_an_error() -> None:
    with pytest.raises(bd.DashboardBenchError):
        bd.run(bd.Plan.tiny(), {})
