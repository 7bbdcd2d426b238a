"""The spool: durable JSON files, replayed in order, kept when the handler fails."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.store import NewReport, Spool

from .helpers import make_report


def test_new_report_round_trips_through_json() -> None:
    report = make_report(
        chat_external_id="-100123",
        inbound_message_id=7,
        details={"paid_via": "bank", "contacts": ["qq"]},
        money_lost=True,
        amount=Decimal("1234.50"),
        happened_at=datetime(2024, 5, 1, 20, 30, tzinfo=timezone(timedelta(hours=8))),
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["amount"] == "1234.50"
    assert data["happened_at"] == "2024-05-01T20:30:00+08:00"
    again = NewReport.from_dict(data)
    assert again == report
    assert isinstance(again.indicators[0], tuple)
    assert NewReport.from_dict(make_report(amount=None).to_dict()).amount is None
    with pytest.raises(ValueError, match="unknown"):
        NewReport.from_dict({**data, "colour": "red"})


def test_put_pending_drain_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    paths = [spool.put("report", make_report(f"r{i}").to_dict()) for i in range(5)]
    paths.append(spool.put("inbox", {"sender_id": "r9", "text": "你好"}))
    assert spool.pending() == paths == sorted(paths)
    assert not list((tmp_path / "spool").glob(".tmp-*"))
    seen: list[tuple[str, Any]] = []

    def handler(kind: str, record: dict[str, Any]) -> None:
        seen.append((kind, NewReport.from_dict(record) if kind == "report" else record))

    assert spool.drain(handler) == 6
    assert [kind for kind, _ in seen] == ["report"] * 5 + ["inbox"]
    assert [r.sender_id for _, r in seen[:5]] == [f"r{i}" for i in range(5)]
    assert seen[5][1] == {"sender_id": "r9", "text": "你好"}
    assert spool.pending() == []
    assert spool.drain(handler) == 0


def test_a_failing_handler_keeps_the_file_and_stops(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first, second, third = (spool.put("inbox", {"n": n}) for n in range(3))
    handled: list[int] = []

    def handler(_kind: str, record: dict[str, Any]) -> None:
        if record["n"] == 1:
            raise ConnectionError("database still away")
        handled.append(record["n"])

    with pytest.raises(ConnectionError):
        spool.drain(handler)
    assert handled == [0]
    assert spool.pending() == [second, third]
    assert not first.exists()
    assert Spool.read(second) == ("inbox", {"n": 1})
    assert spool.drain(lambda _kind, record: handled.append(record["n"])) == 2
    assert handled == [0, 1, 2]


def test_half_written_files_are_not_pending(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / ".tmp-00000000000000000001-x-report.json").write_text("{", encoding="utf-8")
    assert spool.pending() == []
    with pytest.raises(ValueError):
        spool.put("Bad Kind", {})


def test_one_drain_at_a_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put("inbox", {"n": 0})
    spool.put("inbox", {"n": 1})
    inside, release = threading.Event(), threading.Event()
    results: list[int] = []

    def slow(_kind: str, _record: dict[str, Any]) -> None:
        inside.set()
        release.wait(5)

    thread = threading.Thread(target=lambda: results.append(spool.drain(slow)))
    thread.start()
    assert inside.wait(5)
    assert Spool(tmp_path).drain(lambda *_: None) == 0  # the other drain holds the lock
    release.set()
    thread.join()
    assert results == [2]
