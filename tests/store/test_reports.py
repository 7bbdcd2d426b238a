"""Residents and reports: what add_report writes, in one transaction, and reading it back."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bot.store import NotFound, Store
from bot.store.models import Indicator, ReportEvent, ReportIndicator, ReportMinhashBand, Resident
from bot.store.repo import indicator_hash
from bot.store.similarity import text_hash

from .helpers import SCAM_TEXT, make_report


def _count(store: Store, model: type) -> int:
    with store.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_resident_is_created_once_and_seen_again(store: Store) -> None:
    first = store.resident("tg:1:2", channel="telegram")
    again = store.resident("tg:1:2", channel="telegram")
    assert first.id == again.id
    assert first.channel == "telegram"
    assert not first.subscribed
    assert again.last_seen_at >= first.last_seen_at
    assert first.created_at.tzinfo is not None
    assert first.created_at.utcoffset() == timedelta(0)


def test_subscription_and_profile_consent(store: Store) -> None:
    on = store.set_subscribed("r1", True)
    assert on.subscribed and on.subscribed_at is not None
    off = store.set_subscribed("r1", False)
    assert not off.subscribed and off.unsubscribed_at is not None
    profiled = store.set_profile("r1", "60+")
    assert profiled.age_group == "60+" and profiled.profile_consent_at is not None
    withdrawn = store.set_profile("r1", None)
    assert withdrawn.age_group is None and withdrawn.profile_consent_at is None


def test_add_report_writes_report_event_bands_and_indicators(store: Store) -> None:
    report = store.add_report(make_report())
    assert report.status == "new"
    assert report.sender_id == "r1"
    assert report.text == SCAM_TEXT
    assert report.text_hash == text_hash(SCAM_TEXT)
    assert report.amount == Decimal("500.00")
    assert [(e.from_status, e.to_status, e.actor) for e in report.events] == [(None, "new", "bot")]
    assert {(i.kind, i.value, i.masked, i.seen_count) for i in report.indicators} == {
        ("phone_mobile", "13800138000", "138****8000", 1),
        ("money", "500", "500", 1),
    }
    phone = next(i for i in report.indicators if i.kind == "phone_mobile")
    assert phone.value_hash == indicator_hash("phone_mobile", "13800138000")
    assert phone.status == "suspected"
    assert _count(store, ReportMinhashBand) == 8
    assert _count(store, ReportEvent) == 1
    assert store.get_report(report.id) == report


def test_the_view_of_a_new_report_is_what_reads_back(store: Store) -> None:
    when = datetime(2024, 5, 1, 20, 30, tzinfo=timezone(timedelta(hours=8)))
    report = store.add_report(make_report(amount=Decimal("12.345"), happened_at=when))
    assert report.amount == Decimal("12.35")
    assert report.happened_at is not None and report.happened_at.tzinfo == timezone.utc
    assert store.get_report(report.id) == report
    bare = store.add_report(make_report("r2", indicators=[], amount=None))
    assert bare.indicators == ()
    assert store.get_report(bare.id) == bare


def test_indicators_are_shared_and_counted_once_per_report(store: Store) -> None:
    phone = ("phone_mobile", "13800138000", "138****8000")
    store.add_report(make_report(indicators=[phone, phone]))
    second = store.add_report(make_report("r2", indicators=[phone]))
    assert [i.seen_count for i in second.indicators] == [2]
    assert _count(store, Indicator) == 1
    assert _count(store, ReportIndicator) == 2
    found = store.indicator_statuses([("phone_mobile", "13800138000"), ("qq", "12345")])
    assert list(found) == [("phone_mobile", "13800138000")]
    assert found["phone_mobile", "13800138000"].seen_count == 2


def test_add_report_is_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("the indicators could not be written")

    monkeypatch.setattr(store, "_link_indicators", broken)
    with pytest.raises(RuntimeError):
        store.add_report(make_report("r-atomic"))
    for model in (Resident, ReportEvent, ReportMinhashBand, Indicator):
        assert _count(store, model) == 0
    assert store.count_reports() == 0


def test_bad_reports_are_refused_before_writing(store: Store) -> None:
    with pytest.raises(ValueError, match="source"):
        store.add_report(make_report(source="gossip"))
    with pytest.raises(ValueError, match="indicator kind"):
        store.add_report(make_report(indicators=[("email", "a@b.c", "a@b.c")]))
    with pytest.raises(NotFound):
        store.add_report(make_report(inbound_message_id=999))
    naive = datetime(2024, 5, 1, 12, 0)  # naive on purpose
    with pytest.raises(ValueError, match="naive"):
        store.add_report(make_report(happened_at=naive))
    assert store.count_reports() == 0


def test_report_links_a_known_chat_and_its_inbound_message(store: Store) -> None:
    chat = store.upsert_chat("telegram", "-100123", "group", "幸福社区3网格")
    message_id = store.inbox_put("tg:-100123:7", "telegram", SCAM_TEXT, chat_external_id="-100123")
    report = store.add_report(
        make_report(
            "tg:-100123:7",
            channel="telegram",
            chat_external_id="-100123",
            inbound_message_id=message_id,
            source="group_auto",
        )
    )
    assert report.chat_id == chat.id
    assert report.inbound_message_id == message_id
    unknown = store.add_report(make_report("r9", chat_external_id="nowhere"))
    assert unknown.chat_id is None


def test_update_report_merges_the_form_answers(store: Store) -> None:
    report = store.add_report(make_report(details={"contact": "phone"}))
    when = datetime(2024, 5, 1, 20, 30, tzinfo=timezone(timedelta(hours=8)))
    updated = store.update_report(
        report.id,
        details={"paid_via": "bank"},
        money_lost=True,
        amount=Decimal("12000.5"),
        happened_at=when,
        source="report_form",
    )
    assert updated.details == {"contact": "phone", "paid_via": "bank"}
    assert updated.money_lost is True
    assert updated.amount == Decimal("12000.50")
    assert updated.happened_at == when
    assert updated.happened_at.tzinfo == timezone.utc
    assert updated.source == "report_form"
    assert updated.updated_at >= report.updated_at
    assert store.get_report(report.id) == updated
    with pytest.raises(NotFound):
        store.update_report(report.id + 100, money_lost=False)


def test_amounts_are_exact_to_the_cent(store: Store) -> None:
    for amount, stored in [("0.1", "0.10"), ("12.345", "12.35"), ("999999999999.99", None)]:
        report = store.add_report(make_report(amount=Decimal(amount)))
        assert report.amount == Decimal(stored or amount)


def test_reading_reports(store: Store) -> None:
    ids = [store.add_report(make_report(f"r{i % 2}", text=f"第{i}条消息")).id for i in range(5)]
    assert store.get_report(9999) is None
    assert [r.id for r in store.list_reports()] == ids[::-1]
    assert [r.id for r in store.list_reports(limit=2, offset=1)] == ids[3:1:-1]
    assert store.count_reports() == 5
    assert store.count_reports("new") == 5
    assert store.count_reports("confirmed") == 0
    assert store.list_reports("confirmed") == []
    assert [r.id for r in store.reports_of("r0")] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in store.reports_of("r1", limit=1)] == [ids[3]]
    assert store.reports_of("nobody") == []
    with pytest.raises(ValueError):
        store.list_reports("lost")


def test_views_are_frozen_and_keep_personal_data_out_of_repr(store: Store) -> None:
    report = store.add_report(make_report())
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.status = "confirmed"  # type: ignore[misc]
    shown = repr(report)
    assert "13800138000" not in shown
    assert "138****8000" in shown
    assert SCAM_TEXT not in repr(make_report())
