"""action_assess_message: warnings with the resident's red flags, reports logged, staff's
verdicts and confirmed indicators outranking the model, the store down."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.assess import ActionAssessMessage
from bot.replay import replay_spool
from tests.actions.conftest import responses, tracker

pytestmark = pytest.mark.anyio

SEED = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"


async def run(t, domain):
    dispatcher = CollectingDispatcher()
    events = await ActionAssessMessage().run(dispatcher, t, domain)
    return dispatcher, events


async def test_seed_message_is_warned_and_logged(app, store, domain):
    dispatcher, events = await run(tracker(SEED, "scam_rebate", 0.99), domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_warning_rebate"
    assert "“下载软件做任务”" in message["flags_line"]
    assert message["risk_line"].startswith("⚠️ 高风险")
    [report] = store.list_reports()
    assert f"举报第{report.id}号" in message["report_line"]
    assert events == [SlotSet("current_report_id", report.id)]
    assert (report.source, report.scam_type, report.status) == ("check", "rebate", "new")
    assert report.sender_id == "resident-1"
    assert [e.to_status for e in store.get_report(report.id).events] == ["new"]


async def test_ordinary_message_is_not_logged(app, store, domain):
    dispatcher, events = await run(tracker("今晚小区停水，明早六点恢复", "not_scam", 0.97), domain)
    assert responses(dispatcher) == ["utter_checked_not_scam"]
    assert dispatcher.messages[0]["seen_line"] == ""
    assert store.list_reports() == []
    assert events == []


async def test_nothing_readable_gets_a_clear_answer(app, store, domain):
    for text in ("", "   ", "😀😀🙏", "？？？"):
        dispatcher, _ = await run(tracker(text, "nlu_fallback", 0.2), domain)
        assert responses(dispatcher) == ["utter_empty_message"], text
    assert store.list_reports() == []


async def test_an_unsure_parse_without_flags_asks_again(app, domain):
    dispatcher, _ = await run(tracker("那个事情咋整的", "nlu_fallback", 0.25), domain)
    assert responses(dispatcher) == ["utter_default"]


async def test_personal_data_is_masked_in_the_report(app, store, domain):
    text = "刷单返利，日结佣金，加我微信或打13812345678，先垫付任务"
    await run(tracker(text, "scam_rebate", 0.98), domain)
    [report] = store.list_reports()
    assert "13812345678" not in report.text_masked
    assert "13812345678" in report.text
    assert {i.kind for i in report.indicators} >= {"phone_mobile"}
    assert all("12345678" not in i.masked for i in report.indicators)


async def test_a_message_staff_confirmed_is_answered_with_that_verdict(app, store, domain):
    text = "您的快递丢失了，我是快递理赔客服，现在给您三倍赔偿，请加理赔专员QQ"
    await run(tracker(text, "scam_customer_service", 0.9, sender="first"), domain)
    [first] = store.list_reports()
    store.transition(first.id, "confirmed", "cli", verdict_scam_type="customer_service")
    # A second resident, and the model is not even sure it is a scam.
    dispatcher, _ = await run(tracker(text, "not_scam", 0.6, sender="second"), domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_warning_customer_service"
    assert "工作人员已核实过这条消息：是诈骗" in message["seen_line"]
    assert "已有1位居民举报过" in message["seen_line"]
    second = store.list_reports()[0]
    assert second.details["basis"] == "seen_confirmed" and second.risk == "high"


async def test_a_near_copy_of_a_confirmed_message_is_caught(app, store, domain):
    text = "恭喜您获得本店年终回馈大奖，点击链接 www.lingjiang-vip.top 填写银行卡号领取奖金五千元"
    await run(tracker(text, "scam_other", 0.9, sender="a"), domain)
    store.transition(
        store.list_reports()[0].id, "confirmed", "cli", verdict_scam_type="other_scam"
    )
    reworded = (
        "恭喜您获得本店年终回馈大奖，点击链接 www.lingjiang-vip.top 填写银行卡号领取奖金八千元！"
    )
    dispatcher, _ = await run(tracker(reworded, "not_scam", 0.7, sender="b"), domain)
    assert dispatcher.messages[0]["response"] == "utter_warning_other_scam"
    assert "已核实" in dispatcher.messages[0]["seen_line"]


async def test_a_dismissed_message_is_not_warned_again(app, store, domain):
    text = "社区通知：本周六上午在活动室开展反诈宣传，请大家准时参加，可领取小礼品"
    await run(tracker(text, "scam_fundraising", 0.55, sender="a"), domain)
    [first] = store.list_reports()
    store.transition(first.id, "dismissed", "cli")
    dispatcher, _ = await run(tracker(text, "scam_fundraising", 0.55, sender="b"), domain)
    assert responses(dispatcher) == ["utter_checked_not_scam"]
    assert "不是诈骗" in dispatcher.messages[0]["seen_line"]
    assert len(store.list_reports()) == 1


async def test_a_confirmed_phone_makes_any_message_high_risk(app, store, domain):
    store.set_indicator_status("phone_mobile", "13912345678", "confirmed", "cli")
    dispatcher, _ = await run(tracker("你好，有空回个电话 13912345678", "not_scam", 0.9), domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_warning_other_scam"
    assert "已被确认用于诈骗" in message["seen_line"]
    assert "13912345678" not in message["seen_line"]  # masked


async def test_store_locked_the_report_is_spooled_then_replayed(app, store, domain, tmp_path):
    store.list_reports()  # create the database file
    path = app.settings.database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        dispatcher, events = await run(tracker(SEED, "scam_rebate", 0.99), domain)
    finally:
        holder.rollback()
        holder.close()
    [message] = dispatcher.messages
    assert message["response"] == "utter_warning_rebate"  # the resident is still warned
    assert "稍后登记编号" in message["report_line"]
    assert events == [SlotSet("current_report_id", None)]
    assert len(app.spool.pending()) == 1
    assert replay_spool(store, app.spool) == 1
    [report] = store.list_reports()
    assert report.text == SEED and report.scam_type == "rebate"
    assert app.spool.pending() == []


async def test_store_locked_for_a_moment_is_waited_for(app, store, domain):
    store.list_reports()
    path = app.settings.database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, timeout=0, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.2, holder.rollback)
    release.start()
    try:
        dispatcher, _ = await run(tracker(SEED, "scam_rebate", 0.99), domain)
    finally:
        release.join()
        holder.close()
    assert "已登记为举报第" in dispatcher.messages[0]["report_line"]
    assert len(store.list_reports()) == 1 and app.spool.pending() == []


async def test_database_gone_the_resident_is_warned_and_the_report_kept(app, domain, tmp_path):
    from actions.deps import Deps, use
    from bot.store.repo import Store

    # Nothing listens on port 1: every connection is refused, as when PostgreSQL is down.
    gone = Store("postgresql://postgres@127.0.0.1:1/test", retry_seconds=0.3)
    down = Deps(app.settings, store_override=gone)
    use(down)
    dispatcher, _ = await run(tracker(SEED, "scam_rebate", 0.99), domain)
    assert dispatcher.messages[0]["response"] == "utter_warning_rebate"
    assert "稍后登记编号" in dispatcher.messages[0]["report_line"]
    assert len(down.spool.pending()) == 1
    # Back up: the spooled report goes into the store.
    assert replay_spool(app.store, down.spool) == 1
    assert app.store.list_reports()[0].text == SEED


async def test_a_turn_run_again_does_not_log_twice(app, store, domain):
    inbound = store.inbox_put("resident-1", "test", SEED)
    meta = {"inbound_id": inbound, "channel": "test"}
    _, first = await run(tracker(SEED, "scam_rebate", 0.99, metadata=meta), domain)
    _, again = await run(tracker(SEED, "scam_rebate", 0.99, metadata=meta), domain)
    assert first == again and len(store.list_reports()) == 1
    assert store.list_reports()[0].inbound_message_id == inbound


async def test_an_unknown_inbox_id_does_not_lose_the_report(app, store, domain):
    meta = {"inbound_id": 999_999, "channel": "test"}
    dispatcher, _ = await run(tracker(SEED, "scam_rebate", 0.99, metadata=meta), domain)
    assert "已登记为举报第" in dispatcher.messages[0]["report_line"]
    assert store.list_reports()[0].inbound_message_id is None
