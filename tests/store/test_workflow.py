"""A report's status history: allowed moves recorded in order, others refused, one winner."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import sqlalchemy as sa

from bot.nlp.taxonomy import load_taxonomy
from bot.settings import Settings
from bot.store import InvalidTransition, NotFound, Store
from bot.store.models import AuditLog
from bot.store.workflow import TRANSITIONS

from .helpers import make_report


def _audit_rows(store: Store) -> list[tuple[str, str, int | None, dict]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(AuditLog.action, AuditLog.actor, AuditLog.target_id, AuditLog.details)
            .where(AuditLog.target_type == "report")
            .order_by(AuditLog.id)
        )
        return [tuple(r) for r in rows]


def test_every_move_is_recorded_in_order(store: Store) -> None:
    leader = store.add_user("wang", "grid_leader", "王网格员")
    report = store.add_report(make_report())
    store.transition(report.id, "assigned", "cli", assigned_to=leader.id)
    store.transition(report.id, "in_review", f"user:{leader.id}", note="在核实")
    confirmed = store.transition(
        report.id, "confirmed", f"user:{leader.id}", verdict_scam_type="rebate", note="刷单返利"
    )
    assert confirmed.assigned_to == leader.id
    assert confirmed.verdict_scam_type == "rebate"
    assert confirmed.verdict_note == "刷单返利"
    assert confirmed.reviewed_by == leader.id
    assert confirmed.reviewed_at is not None
    answered = store.transition(report.id, "answered", "bot")
    assert answered.answered_at is not None
    reopened = store.transition(report.id, "in_review", "user:1")
    dismissed = store.transition(reopened.id, "dismissed", "cli", note="是正规通知")
    assert dismissed.verdict_scam_type == "not_scam"
    assert dismissed.reviewed_by is None  # a CLI review names no user
    moves = [(e.from_status, e.to_status, e.actor) for e in dismissed.events]
    assert moves == [
        (None, "new", "bot"),
        ("new", "assigned", "cli"),
        ("assigned", "in_review", f"user:{leader.id}"),
        ("in_review", "confirmed", f"user:{leader.id}"),
        ("confirmed", "answered", "bot"),
        ("answered", "in_review", "user:1"),
        ("in_review", "dismissed", "cli"),
    ]
    assert dismissed.events[2].note == "在核实"
    assert [e.at for e in dismissed.events] == sorted(e.at for e in dismissed.events)
    audit = _audit_rows(store)
    assert [(a[0], a[1], a[2]) for a in audit] == [
        ("report.transition", actor, report.id) for _, _, actor in moves[1:]
    ]
    assert audit[0][3] == {"from": "new", "to": "assigned", "assigned_to": leader.id}
    assert audit[2][3] == {"from": "in_review", "to": "confirmed", "verdict": "rebate"}


def test_a_user_assigns_themselves_and_can_be_reassigned(store: Store) -> None:
    a = store.add_user("a", "staff")
    b = store.add_user("b", "grid_leader")
    report = store.add_report(make_report())
    assert store.transition(report.id, "assigned", f"user:{a.id}").assigned_to == a.id
    again = store.transition(report.id, "assigned", f"user:{a.id}", assigned_to=b.id)
    assert again.assigned_to == b.id
    by_cli = store.transition(report.id, "assigned", "cli", note="assigned to 李网格员")
    assert by_cli.assigned_to == b.id  # the CLI names the assignee in the note only
    assert by_cli.events[-1].note == "assigned to 李网格员"
    with pytest.raises(NotFound):
        store.transition(report.id, "assigned", "cli", assigned_to=999)


ALL = ["new", "assigned", "in_review", "confirmed", "dismissed", "answered"]


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [(f, t) for f in ALL for t in ALL if t not in TRANSITIONS[f]],
)
def test_the_table_refuses_everything_else(from_status: str, to_status: str) -> None:
    from bot.store import workflow

    with pytest.raises(InvalidTransition) as caught:
        workflow.check(from_status, to_status)
    assert repr(from_status) in str(caught.value)
    assert repr(to_status) in str(caught.value)


def test_illegal_moves_are_refused_and_change_nothing(store: Store) -> None:
    report = store.add_report(make_report())
    with pytest.raises(InvalidTransition, match="'new' to 'answered'"):
        store.transition(report.id, "answered", "cli")
    with pytest.raises(InvalidTransition, match="'new' to 'lost'"):
        store.transition(report.id, "lost", "cli")
    with pytest.raises(InvalidTransition, match="verdict_scam_type"):
        store.transition(report.id, "confirmed", "cli")
    with pytest.raises(InvalidTransition, match="verdict_scam_type"):
        store.transition(report.id, "confirmed", "cli", verdict_scam_type="not_scam")
    with pytest.raises(InvalidTransition, match="not_scam"):
        store.transition(report.id, "dismissed", "cli", verdict_scam_type="rebate")
    store.transition(report.id, "in_review", "cli")
    with pytest.raises(InvalidTransition, match="'in_review' to 'assigned'"):
        store.transition(report.id, "assigned", "user:1")
    with pytest.raises(NotFound):
        store.transition(report.id + 1, "in_review", "cli")
    after = store.get_report(report.id)
    assert after is not None
    assert after.status == "in_review"
    assert len(after.events) == 2
    assert len(_audit_rows(store)) == 1


def test_verdicts_are_checked_against_known_codes(db_url: str) -> None:
    with Store(db_url, scam_codes=["rebate", "not_scam", "fake_police"]) as store:
        report = store.add_report(make_report())
        with pytest.raises(InvalidTransition, match="'lottery' is not a scam type code"):
            store.transition(report.id, "confirmed", "cli", verdict_scam_type="lottery")
        ok = store.transition(report.id, "confirmed", "cli", verdict_scam_type="fake_police")
        assert ok.verdict_scam_type == "fake_police"


def _race_to_confirm(store: Store, report_id: int) -> list[str]:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def confirm(scam_type: str) -> None:
        barrier.wait()
        try:
            store.transition(report_id, "confirmed", "cli", verdict_scam_type=scam_type)
            outcomes.append("won")
        except InvalidTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=confirm, args=(t,)) for t in ("rebate", "fake_police")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_concurrent_confirms_one_wins(store: Store) -> None:
    for round_ in range(3):
        report = store.add_report(make_report(f"r{round_}"))
        assert sorted(_race_to_confirm(store, report.id)) == ["refused", "won"]
        final = store.get_report(report.id)
        assert final is not None
        assert [e.to_status for e in final.events] == ["new", "confirmed"]


def test_from_settings_checks_verdicts_against_the_taxonomy(db_url: str) -> None:
    settings = dataclasses.replace(Settings(), database_url=db_url, store_retry_seconds=2.0)
    codes = load_taxonomy(settings.taxonomy_path).scam_codes
    with Store.from_settings(settings) as store:
        assert store.retry_seconds == 2.0
        report = store.add_report(make_report())
        with pytest.raises(InvalidTransition, match="not a scam type code"):
            store.transition(report.id, "confirmed", "cli", verdict_scam_type="made_up")
        done = store.transition(report.id, "confirmed", "cli", verdict_scam_type=codes[0])
        assert done.verdict_scam_type == codes[0]
