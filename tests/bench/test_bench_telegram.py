"""The Telegram part of ``make bench`` (scripts/bench_telegram.py): its pieces, and one short
run of the real app on the session's stack, checked against the store and the sandbox."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT, Settings

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import bench_telegram as bt


def test_settings_pass_through_the_environment_unchanged(tmp_path: Path) -> None:
    settings = dataclasses.replace(
        Settings(),
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        spool_dir=tmp_path / "spool",
        scam_threshold=0.42,
        web_port=18123,
        group_warn_window_minutes=7,
    )
    again = Settings.from_env(bt.settings_env(settings), dotenv=tmp_path / "none.env")
    assert again == settings


def test_texts_are_distinct_and_scam_ones_spread_evenly() -> None:
    texts = bt.Texts(["骗1", "骗2", "骗3"], ["好1", "好2"], seed=1)
    mixed = texts.mix(40, 0.1)
    assert len({t for t, _ in mixed}) == 40
    scam = [i for i, (_, is_scam) in enumerate(mixed) if is_scam]
    assert len(scam) == 4
    assert all(b - a == 10 for a, b in itertools.pairwise(scam))
    # every scam text is used once before any is used again
    fresh = bt.Texts(["骗1", "骗2", "骗3"], ["好1"], seed=2)
    bases = [fresh.next_scam().split("（")[0] for _ in range(6)]
    assert sorted(bases[:3]) == sorted(bases[3:]) == ["骗1", "骗2", "骗3"]


def test_split_pool_needs_both_kinds() -> None:
    scam, ordinary = bt.split_pool([("a", "loan"), ("b", "not_scam"), ("a", "loan")])
    assert (scam, ordinary) == (["a"], ["b"])
    with pytest.raises(ValueError, match="both scam and ordinary"):
        bt.split_pool([("a", "loan")])


def test_settled_only_when_every_message_is_done_and_every_warning_sent() -> None:
    snap = bt.Snapshot(inbox={"done": 10}, decided=2, outbox={"sent": 2})
    assert snap.settled(10)
    assert not snap.settled(11)  # one not in the inbox yet
    assert not bt.Snapshot(
        inbox={"done": 9, "processing": 1}, decided=2, outbox={"sent": 2}
    ).settled(10)
    assert not bt.Snapshot(inbox={"done": 10}, decided=2, outbox={"sent": 1}).settled(10)
    assert not bt.Snapshot(
        inbox={"done": 10}, decided=2, outbox={"sent": 1, "pending": 1}
    ).settled(10)
    assert bt.Snapshot(inbox={"done": 10}, decided=2, outbox={"sent": 1, "failed": 1}).settled(10)


def test_summaries() -> None:
    summary = bt.latency_summary([0.1, 0.2, 0.3, 0.4])
    assert summary["n"] == 4
    assert summary["p50_ms"] == pytest.approx(250)
    assert summary["max_ms"] == pytest.approx(400)
    assert bt.latency_summary([])["p95_ms"] is None
    assert bt.achieved_rate([0.0, 0.5, 1.0]) == pytest.approx(2.0)
    assert bt.achieved_rate([1.0]) is None


@pytest.mark.rasa
def test_a_short_run_of_the_real_app(stack) -> None:  # type: ignore[no-untyped-def]
    """Every message answered or checked, warnings shown, the report written."""
    from bot.nlp.evaluate import load_labelled
    from bot.nlp.taxonomy import load_taxonomy

    settings = stack.settings
    taxonomy = load_taxonomy(settings.taxonomy_path)
    pool = load_labelled(sorted((PROJECT_ROOT / "tests/nlu").glob("*.yml")), taxonomy)
    plan = bt.Plan(
        rate=4.0,
        seconds=3.0,
        users=4,
        latency_groups=3,
        ramp=(4.0,),
        ramp_seconds=3.0,
        ramp_groups=5,
        scam_share=0.5,
        settle_limit=30.0,
    )
    pids = {"rasa": stack.rasa.process.pid, "actions": stack.action.process.pid}
    log = Path(settings.spool_dir).parent / "bench-app.log"
    result = bt.run(
        settings, pool, plan, pids=pids, log_path=log, parse_reference={"throughput": 50.0}
    )
    private, groups, (step,) = result["private"], result["groups"], result["ramp"]
    assert private["messages"] == 12
    assert private["replied"] == 12
    assert private["no_reply"] == 0
    assert private["latency"]["p50_ms"] > 0
    assert groups["not_in_inbox"] == groups["not_done"] == groups["warnings_missing"] == 0
    assert groups["scam_posted"] == groups["ordinary_posted"] == 6
    assert groups["warnings_delivered"] == groups["warnings_decided"] == groups["scam_warned"]
    assert groups["warnings_delivered"] >= 1  # test-set scam texts: most get a warning
    assert groups["latency"]["n"] == groups["warnings_delivered"]
    assert groups["ordinary_warned"] == 0
    assert step["lost"] == 0
    assert step["held"], step
    assert result["memory_end_mb"]["VmRSS"] > 50
    assert result["app_exit_status"] == 0
    text = "\n".join(bt.markdown(result))
    assert "| private chats, 4 residents" in text
    assert "Highest rate held: **4 group messages/s**" in text
