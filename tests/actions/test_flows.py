"""The urgent path, report status in words, subscriptions and the age-group profile."""

from __future__ import annotations

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.status import ActionReportStatus, report_number
from actions.subscription import ActionSubscribe, ActionUnsubscribe
from actions.urgent import ActionUrgentHelp
from tests.actions.conftest import responses, tracker
from tests.actions.test_assess import SEED, run

pytestmark = pytest.mark.anyio


async def test_urgent_path_tells_110_first_and_stores_an_alert(app, store, domain):
    dispatcher = CollectingDispatcher()
    t = tracker("我已经转了3万过去了怎么办", "money_transferred", 0.96)
    events = await ActionUrgentHelp().run(dispatcher, t, domain)
    assert responses(dispatcher) == ["utter_urgent"]
    [report] = store.list_reports()
    assert "紧急编号第" in dispatcher.messages[0]["alert_line"]
    assert report.source == "urgent" and report.money_lost is True and report.risk == "high"
    [alert] = store.pending_alerts()
    assert alert.report_id == report.id and alert.kind == "urgent"
    assert SlotSet("report_money_lost", True) in events
    text = domain["responses"]["utter_urgent"][0]["text"]
    assert text.index("110") < text.index("{alert_line}")


async def test_urgent_after_a_check_marks_that_report(app, store, domain):
    _, events = await run(tracker(SEED, "scam_rebate", 0.99), domain)
    report_id = events[0]["value"]
    dispatcher = CollectingDispatcher()
    t = tracker(
        "/money_transferred", "money_transferred", 1.0, slots={"current_report_id": report_id}
    )
    await ActionUrgentHelp().run(dispatcher, t, domain)
    [report] = store.list_reports()
    assert report.id == report_id and report.money_lost is True
    assert len(store.pending_alerts()) == 1


async def test_a_button_press_alone_gives_a_readable_report(app, store, domain):
    dispatcher = CollectingDispatcher()
    await ActionUrgentHelp().run(
        dispatcher, tracker("/money_transferred", "money_transferred", 1.0), domain
    )
    [report] = store.list_reports()
    assert "已经向对方转账" in report.text


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("我的举报12号怎么样了", 12),
        ("#7", 7),
        ("查询举报１２３", 123),
        ("我的举报有结果了吗", None),
    ],
)
def test_report_number(text, number):
    assert report_number(text) == number


async def test_status_in_words(app, store, domain, taxonomy):
    _, events = await run(tracker(SEED, "scam_rebate", 0.99), domain)
    report_id = events[0]["value"]
    ask = ActionReportStatus()
    dispatcher = CollectingDispatcher()
    await ask.run(dispatcher, tracker("我的举报怎么样了", "check_report_status"), domain)
    assert responses(dispatcher) == ["utter_status_new"]
    assert dispatcher.messages[0]["report_id"] == report_id
    store.transition(report_id, "in_review", "cli")
    store.transition(report_id, "confirmed", "cli", verdict_scam_type="rebate")
    dispatcher = CollectingDispatcher()
    await ask.run(dispatcher, tracker(f"举报{report_id}号", "check_report_status"), domain)
    assert responses(dispatcher) == ["utter_status_confirmed"]
    assert dispatcher.messages[0]["verdict_name"] == taxonomy.get("rebate").name


async def test_someone_elses_report_is_not_found(app, store, domain):
    _, events = await run(tracker(SEED, "scam_rebate", 0.99, sender="owner"), domain)
    dispatcher = CollectingDispatcher()
    t = tracker(f"举报{events[0]['value']}号怎么样", "check_report_status", sender="other")
    await ActionReportStatus().run(dispatcher, t, domain)
    assert responses(dispatcher) == ["utter_report_not_found"]
    dispatcher = CollectingDispatcher()
    await ActionReportStatus().run(dispatcher, tracker("我的举报", sender="other"), domain)
    assert responses(dispatcher) == ["utter_no_reports"]


def _age(group: str) -> dict:
    return {"entities": [{"entity": "age_group", "value": group}]}


async def test_subscribe_profile_and_unsubscribe(app, store, domain):
    sub, unsub = ActionSubscribe(), ActionUnsubscribe()

    async def say(action, text, intent, **extra):
        dispatcher = CollectingDispatcher()
        await action.run(dispatcher, tracker(text, intent, **extra), domain)
        return responses(dispatcher)

    assert await say(sub, "订阅", "subscribe") == ["utter_subscribed"]
    assert store.resident("resident-1").subscribed is True
    assert await say(sub, "订阅", "subscribe") == ["utter_already_subscribed"]
    assert await say(sub, '/subscribe{"age_group":"60_plus"}', "subscribe", **_age("60_plus")) == [
        "utter_profile_saved"
    ]
    resident = store.resident("resident-1")
    assert resident.age_group == "60_plus" and resident.profile_consent_at is not None
    assert await say(sub, "/subscribe", "subscribe", **_age("none")) == ["utter_profile_cleared"]
    assert store.resident("resident-1").age_group is None
    await say(sub, "/subscribe", "subscribe", **_age("18_35"))
    assert await say(unsub, "取消订阅", "unsubscribe") == ["utter_unsubscribed"]
    resident = store.resident("resident-1")
    assert resident.subscribed is False and resident.age_group is None
    assert resident.profile_consent_at is None
    assert await say(unsub, "取消订阅", "unsubscribe") == ["utter_not_subscribed"]


async def test_an_unknown_age_group_is_not_stored(app, store, domain):
    dispatcher = CollectingDispatcher()
    t = tracker("/subscribe", "subscribe", **_age("<script>"))
    await ActionSubscribe().run(dispatcher, t, domain)
    assert responses(dispatcher) == ["utter_subscribed"]
    assert store.resident("resident-1").age_group is None


async def test_an_old_or_foreign_report_is_not_a_follow_up(app, store, domain):
    _, events = await run(tracker(SEED, "scam_rebate", 0.99, sender="someone"), domain)
    theirs = events[0]["value"]
    dispatcher = CollectingDispatcher()
    t = tracker(
        "我已经转账了", "money_transferred", 0.97, sender="me", slots={"current_report_id": theirs}
    )
    await ActionUrgentHelp().run(dispatcher, t, domain)
    assert store.get_report(theirs).money_lost is None  # not touched
    assert len(store.reports_of("me")) == 1
