"""The campaign part of ``make bench`` (scripts/bench_campaigns.py): its figures, and one short
run of all three scenarios (60 groups) through the real sandbox and worker processes."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import bench_campaigns as bc

GROUPS = 60


def test_peak_in_a_second_counts_the_busiest_window() -> None:
    assert bc.peak_in_a_second([]) == 0
    assert bc.peak_in_a_second([0.0, 0.5, 0.99, 1.0, 1.4, 3.0]) == 4  # 0.5 .. 1.4
    assert bc.peak_in_a_second([0.0, 1.0, 2.0]) == 1  # a window is one second, open at its end
    assert bc.peak_in_a_second([5.0, 1.0, 1.2, 1.9]) == 3  # order does not matter


def test_sending_rate_leaves_the_restart_gap_out() -> None:
    # worker 1 from t=0: pushes 0.0..1.0 (11 pushes); worker 2 from t=5: 6.0..7.0 (11 pushes)
    first = [i / 10 for i in range(11)]
    second = [6.0 + i / 10 for i in range(11)]
    rate, seconds = bc.sending_rate(first + second, [0.0, 5.0])
    assert seconds == pytest.approx(2.0)
    assert rate == pytest.approx(10.0)
    assert bc.sending_rate([1.0], [0.0]) == (None, 0.0)


def test_a_flood_refusal_is_recognised_in_a_push_reason() -> None:
    assert bc.is_flood("expired: RetryAfter: Flood control exceeded. Retry in 3 seconds")
    assert bc.is_flood("Too Many Requests: retry after 1")
    assert not bc.is_flood("Forbidden: bot was kicked from the supergroup chat")
    assert not bc.is_flood(None)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    log = tmp_path_factory.mktemp("bench-campaigns") / "campaigns.log"
    return bc.run(bc.Plan.quick(GROUPS), log)


def _run(result: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in result["runs"] if r["kind"] == kind)


def test_every_run_sends_each_group_the_push_at_most_once(result: dict[str, Any]) -> None:
    assert [r["kind"] for r in result["runs"]] == list(bc.KINDS)
    assert result["ok"], [bc.problems(r) for r in result["runs"]]
    for r in result["runs"]:
        assert r["limits"] == {"enabled": True, "per_second": 30, "per_group_per_minute": 20}
        assert r["groups"] == GROUPS
        assert r["duplicates"] == 0 and r["received"]["2+"] == 0
        assert r["unhandled_429"] == 0 and r["waiting_left"] == 0 and r["lost"] == 0
        assert r["wrong_text"] == 0 and r["sent_not_received"] == 0
        assert r["received"]["0"] + r["received"]["1"] == GROUPS
        assert r["rate"] is not None and 5 < r["rate"] <= 30.5  # paced at 25/s, under 30/s
        assert r["peak_rss_mb"] > 20
        assert r["workers"][-1]["exit_code"] == 0
        assert r["workers"][-1]["rate_setting"] == 25.0  # the product's default CAMPAIGN_RATE


def test_uninterrupted_and_sigterm_send_everything(result: dict[str, Any]) -> None:
    plain = _run(result, "uninterrupted")
    assert plain["statuses"] == {"sent": GROUPS} and plain["received"]["1"] == GROUPS
    assert len(plain["workers"]) == 1 and plain["workers"][0]["ended_by"] == "idle"
    stopped = _run(result, "sigterm")
    assert stopped["statuses"] == {"sent": GROUPS} and stopped["interrupted"] == 0
    first, second = stopped["workers"]
    assert first["ended_by"] == "signal" and first["exit_code"] == 0  # stopped gracefully
    assert first["sent"] >= GROUPS // 2 and first["sent"] + second["sent"] == GROUPS
    assert second["sent"] > 0


def test_sigkill_records_the_pushes_on_the_way_and_never_resends_them(
    result: dict[str, Any],
) -> None:
    killed = _run(result, "sigkill")
    first, second = killed["workers"]
    assert first["exit_code"] == -9 and first["ended_by"] == "killed"
    assert first["peak_rss_mb"] is not None  # seen in /proc while it ran, though killed
    assert second["ended_by"] == "idle" and first["sent"] + second["sent"] == killed["sent"]
    assert killed["interrupted"] <= 8  # at most the herald's pushes in flight
    assert killed["sent"] + killed["interrupted"] == GROUPS
    assert set(killed["failed"]) <= {"interrupted"}
    # an interrupted push that had arrived shows once; one that had not is not sent later
    assert killed["received"]["1"] == killed["sent"] + killed["interrupted_arrived"]
    assert killed["received_not_sent"] == killed["interrupted_arrived"]


def test_the_planner_is_timed_for_every_group(result: dict[str, Any]) -> None:
    planner = result["planner"]
    assert planner["groups"] == GROUPS and len(planner["seconds"]) == 2
    assert 0 < planner["median_s"] < 10


def test_the_report_and_the_summary_lines(result: dict[str, Any]) -> None:
    text = "\n".join(bc.markdown(result))
    assert "## Campaigns: one push to 60 sandbox groups" in text
    for title in bc.TITLES.values():
        assert f"| {title} |" in text
    assert "FAILED" not in text
    line = bc.summary_line(_run(result, "uninterrupted"))
    assert line.startswith(f"campaigns uninterrupted: {GROUPS} groups, {GROUPS} sent")
    assert "FAILED" not in line
    assert Path(result["log"]).read_text(encoding="utf-8").count("===== run ") == 3


def test_a_broken_promise_is_reported(result: dict[str, Any]) -> None:
    broken = copy.deepcopy(_run(result, "uninterrupted"))
    broken.update(duplicates=2, unhandled_429=1, waiting_left=3)
    issues = bc.problems(broken)
    assert len(issues) == 3
    assert "FAILED" in bc.summary_line(broken)
    report = copy.deepcopy(result)
    report["runs"][0] = {**broken, "ok": False}
    report["ok"] = False
    assert "**(a) uninterrupted FAILED:**" in "\n".join(bc.markdown(report))
