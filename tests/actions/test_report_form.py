"""The report form: each answer validated, bad ones re-asked with the reason, cancel, submit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.report import (
    ActionSubmitReport,
    AskReportContact,
    AskReportStory,
    ValidateReportForm,
)
from tests.actions.conftest import responses, tracker

pytestmark = pytest.mark.anyio

FORM = ValidateReportForm()


def validate(slot: str, value, intent: str = "not_scam", slots: dict | None = None):
    t = tracker(value, intent, slots={**(slots or {}), slot: value}, active_loop="report_form")
    return getattr(FORM, f"validate_{slot}")(value, CollectingDispatcher(), t, {})


@pytest.mark.parametrize(
    "value",
    ["有人冒充快递客服给我打电话，说要退款给我", "刷单被骗", "他让我下载APP"],
)
def test_a_story_is_kept(app, value):
    assert validate("report_story", value)["report_story"] == value


@pytest.mark.parametrize("value", ["", "   ", "😭😭😭", "嗯", "？？"])
def test_a_story_without_words_is_reasked(app, value):
    result = validate("report_story", value)
    assert result["report_story"] is None and result["report_invalid"] == "report_story"


@pytest.mark.parametrize("value", ["取消", "算了，不报了", "退出"])
def test_cancel_at_any_question(app, value):
    for slot in ("report_story", "report_contact", "report_money_lost", "report_when"):
        result = validate(slot, value)
        assert result[slot] is None and result["report_cancelled"] is True


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "他的微信是 wxid_abc123",
        "链接是 http://pay-safe.top/a",
        "卡号6222021234567890123",
    ],
)
def test_a_contact_with_an_indicator_is_kept(app, value):
    assert validate("report_contact", value)["report_contact"] == value


@pytest.mark.parametrize("value", ["没有", "不知道", "对方没留"])
def test_no_contact_is_an_answer(app, value):
    assert validate("report_contact", value)["report_contact"] == "none"


def test_a_contact_without_an_indicator_is_reasked_with_a_masked_quote(app):
    result = validate("report_contact", "他叫王经理，电话好像是138开头")
    assert result["report_contact"] is None and result["report_invalid"] == "report_contact"
    assert result["report_invalid_value"].startswith("他叫王经理")


@pytest.mark.parametrize(
    ("value", "intent", "expected"),
    [
        ("/affirm", "affirm", True),
        ("/deny", "deny", False),
        ("转了", "affirm", True),
        ("没转", "deny", False),
        ("还没有", "deny", False),
    ],
)
def test_money_question(app, value, intent, expected):
    assert validate("report_money_lost", value, intent)["report_money_lost"] is expected


def test_money_with_an_amount_skips_the_amount_question(app):
    result = validate("report_money_lost", "转了3000块", "money_transferred")
    assert result["report_money_lost"] is True and result["report_amount"] == "3000"


def test_a_bare_yes_is_not_an_amount(app):
    result = validate("report_money_lost", "1", "affirm")
    assert result["report_money_lost"] is True and "report_amount" not in result


def test_money_unclear_is_reasked(app):
    result = validate("report_money_lost", "我也说不好", "out_of_scope")
    assert result["report_money_lost"] is None and result["report_invalid"] == "report_money_lost"


@pytest.mark.parametrize(
    ("value", "expected"), [("3000", "3000"), ("两万五", "25000"), ("不记得了", "unknown")]
)
def test_amount(app, value, expected):
    assert validate("report_amount", value)["report_amount"] == expected


def test_amount_without_a_number_is_reasked(app):
    assert validate("report_amount", "很多很多")["report_invalid"] == "report_amount"


def test_when(app):
    assert validate("report_when", "昨天下午3点")["report_when"].endswith("+08:00")
    assert validate("report_when", "不记得")["report_when"] == "unknown"
    assert validate("report_when", "下个月")["report_invalid"] == "report_when"


async def test_required_slots_ask_the_amount_only_when_money_went(app, domain):
    domain_slots = FORM.domain_slots(domain)
    no_money = tracker("x", slots={"report_money_lost": False})
    money = tracker("x", slots={"report_money_lost": True})
    cancelled = tracker("x", slots={"report_cancelled": True})
    d = CollectingDispatcher()
    assert "report_amount" not in await FORM.required_slots(domain_slots, d, no_money, domain)
    assert "report_amount" in await FORM.required_slots(domain_slots, d, money, domain)
    assert await FORM.required_slots(domain_slots, d, cancelled, domain) == []


async def test_a_bad_answer_is_reasked_with_the_reason(app, domain):
    dispatcher = CollectingDispatcher()
    t = tracker("x", slots={"report_invalid": "report_contact", "report_invalid_value": "王经理"})
    events = await AskReportContact().run(dispatcher, t, domain)
    assert responses(dispatcher) == ["utter_invalid_report_contact"]
    assert dispatcher.messages[0]["value"] == "王经理"
    assert SlotSet("report_invalid", None) in events
    dispatcher = CollectingDispatcher()
    await AskReportStory().run(dispatcher, tracker("我要举报", "report_scam"), domain)
    assert responses(dispatcher) == ["utter_ask_report_story"]


FILLED = {
    "report_story": "有人在群里拉我刷单，先返了5块，后来让我垫付3000说卡单了",
    "report_contact": "他的电话13812345678",
    "report_money_lost": True,
    "report_amount": "3000",
    "report_when": "2026-12-01T15:00:00+08:00",
}


async def test_submit_logs_the_report_and_raises_the_alert(app, store, domain):
    dispatcher = CollectingDispatcher()
    story_event = {
        "event": "user",
        "text": FILLED["report_story"],
        "parse_data": {
            "intent": {"name": "scam_rebate", "confidence": 0.97},
            "intent_ranking": [{"name": "scam_rebate", "confidence": 0.97}],
        },
    }
    t = tracker("昨天下午3点", slots=FILLED, events=[story_event])
    events = await ActionSubmitReport().run(dispatcher, t, domain)
    assert responses(dispatcher) == ["utter_urgent", "utter_report_logged"]
    [report] = store.list_reports()
    assert dispatcher.messages[1]["report_id"] == report.id
    assert report.source == "report_form" and report.scam_type == "rebate"
    assert report.money_lost is True and report.amount == Decimal("3000")
    assert report.happened_at.isoformat().startswith("2026-12-01T07:00")
    assert report.details["story"] == FILLED["report_story"]
    assert any(i.kind == "phone_mobile" for i in report.indicators)
    [alert] = store.pending_alerts()
    assert alert.report_id == report.id and "13812345678" not in alert.message
    assert SlotSet("report_story", None) in events
    assert SlotSet("current_report_id", report.id) in events


async def test_submit_completes_the_report_of_an_earlier_check(app, store, domain):
    from tests.actions.test_assess import SEED, run

    _, events = await run(tracker(SEED, "scam_rebate", 0.99), domain)
    report_id = events[0]["value"]
    slots = {
        **FILLED,
        "report_money_lost": False,
        "report_amount": None,
        "current_report_id": report_id,
    }
    dispatcher = CollectingDispatcher()
    await ActionSubmitReport().run(dispatcher, tracker("不记得", slots=slots), domain)
    assert responses(dispatcher) == ["utter_report_logged"]
    [report] = store.list_reports()
    assert report.id == report_id and report.money_lost is False
    assert report.details["story"] == FILLED["report_story"]
    assert store.pending_alerts() == []


async def test_cancelled_form_records_nothing(app, store, domain):
    dispatcher = CollectingDispatcher()
    t = tracker("取消", slots={"report_cancelled": True})
    await ActionSubmitReport().run(dispatcher, t, domain)
    assert responses(dispatcher) == ["utter_report_cancelled"]
    assert store.list_reports() == []
