"""The whole conversation over Rasa's REST channel: the real model, the action server, the store.

These start what ``make run`` starts (the ``stack`` fixture): a Rasa server whose actions run on
an action server writing to a fresh SQLite store, and talk to it as a resident would.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest

from bot.gateway import PENDING_REPLY, Gateway
from bot.nlp.rasa_server import RasaClient
from bot.store.repo import Store

pytestmark = pytest.mark.rasa

SEED = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"


def say(stack, sender: str, message: str, **metadata) -> list[dict]:
    response = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": message, "metadata": metadata},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


def antifraud(stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": stack.settings.database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def store(stack) -> Store:
    return Store(stack.settings.database_url)


def test_the_seed_message_is_warned_with_its_red_flag_and_logged(stack, store):
    replies = say(stack, "r1", SEED)
    reply = texts(replies)
    assert "刷单返利" in reply
    assert "“下载软件做任务”" in reply
    assert "96110" in reply and "110" in reply
    assert [b["payload"] for b in replies[0]["buttons"]] == [
        "/money_transferred",
        "/report_scam",
        "/subscribe",
    ]
    listing = antifraud(stack, "reports", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    records = json.loads(listing.stdout)
    mine = [r for r in records if r["sender_id"] == "r1"]
    assert mine and mine[0]["scam_type"] == "rebate" and mine[0]["status"] == "new"
    assert f"举报第{mine[0]['id']}号" in reply


def test_a_second_sender_gets_the_staff_verdict_and_the_count(stack, store):
    text = "兼职刷单，日结300，下载悦享任务APP，垫付后立返本金加佣金，名额有限速来"
    first = say(stack, "verdict-a", text)
    assert "刷单返利" in texts(first)
    report_id = store.reports_of("verdict-a")[0].id
    confirm = antifraud(stack, "reports", "confirm", str(report_id), "--type", "rebate")
    assert confirm.returncode == 0, confirm.stderr
    second = texts(say(stack, "verdict-b", text))
    assert "工作人员已核实过这条消息：是诈骗" in second
    assert "已有1位居民举报过" in second


def test_an_ordinary_message_is_answered_calmly(stack, store):
    reply = texts(say(stack, "calm", "今晚小区停水，物业说明早六点恢复供水"))
    assert "没有" in reply or "暂时" in reply
    assert store.reports_of("calm") == []


def test_the_report_form_with_bad_values(stack, store):
    sender = "form-1"
    assert "发生了什么" in texts(say(stack, sender, "我要举报"))
    assert texts(say(stack, sender, "😀😀")) != ""  # re-asked
    story = "有人在群里拉我刷单，先返了我5块钱，后来让我垫付3000说卡单了"
    assert "电话" in texts(say(stack, sender, story))
    bad = texts(say(stack, sender, "他叫王经理"))
    assert "王经理" in bad
    money = say(stack, sender, "他电话是13812345678")
    assert [b["payload"] for b in money[0]["buttons"]] == ["/affirm", "/deny"]
    assert "多少" in texts(say(stack, sender, "/affirm"))
    assert texts(say(stack, sender, "三千块"))  # when?
    done = texts(say(stack, sender, "昨天下午3点"))
    assert "110" in done and "举报" in done
    [report] = store.reports_of(sender)
    assert report.source == "report_form" and report.money_lost is True
    assert str(report.amount) in ("3000", "3000.00")
    assert report.details["story"] == story
    assert any(a.report_id == report.id for a in store.pending_alerts())


def test_the_report_form_can_be_cancelled(stack, store):
    say(stack, "form-2", "我要举报")
    assert texts(say(stack, "form-2", "取消"))
    assert store.reports_of("form-2") == []


def test_money_already_transferred(stack, store):
    reply = texts(say(stack, "urgent-1", "我已经转了3万过去了怎么办"))
    assert reply.index("110") < reply.index("网格长")
    [report] = store.reports_of("urgent-1")
    assert report.money_lost is True
    assert any(a.report_id == report.id for a in store.pending_alerts())


def test_report_status_in_words(stack):
    say(stack, "status-1", SEED)
    reply = texts(say(stack, "status-1", "我的举报有结果了吗"))
    assert "举报" in reply and "收到" in reply


def test_subscribe_with_an_age_group(stack, store):
    replies = say(stack, "sub-1", "以后有什么新骗术及时告诉我一声")
    payloads = [b["payload"] for b in replies[0]["buttons"]]
    assert '/subscribe{"age_group":"60_plus"}' in payloads
    say(stack, "sub-1", '/subscribe{"age_group":"60_plus"}')
    resident = store.resident("sub-1")
    assert resident.subscribed and resident.age_group == "60_plus"
    say(stack, "sub-1", "我不需要这些推送了，取消吧")
    assert store.resident("sub-1").subscribed is False


def test_faq_and_out_of_scope(stack):
    assert "96110" in texts(say(stack, "faq-1", "96110是什么电话"))
    assert texts(say(stack, "oos-1", "帮我写一首关于春天的诗"))


@pytest.mark.parametrize(
    "message",
    ["", "🙏🙏🙏", "<script>alert('x')</script>", "刷单" * 6000, "Hello 你好 123 ＡＢＣ"],
)
def test_bad_input_gets_a_clear_answer(stack, message):
    assert texts(say(stack, "bad-input", message)).strip()


def test_action_server_down_nothing_is_lost(stack):
    store = Store(stack.settings.database_url)

    async def scenario() -> None:
        async with RasaClient(stack.rasa_url) as rasa:
            gateway = Gateway(store, rasa)
            stack.action.stop()
            outcome = await gateway.submit("down-1", SEED, channel="test")
            assert outcome.pending and outcome.replies[0]["text"] == PENDING_REPLY
            assert store.inbox_pending_count() >= 1
            await stack.restart_actions()
            delivered: list[list[dict]] = []

            async def deliver(message, replies):
                delivered.append(replies)

            assert await gateway.retry_pending(deliver) >= 1
            assert "刷单返利" in texts(delivered[-1])

    asyncio.run(scenario())
    [report] = store.reports_of("down-1")
    assert report.inbound_message_id is not None


def test_rasa_down_the_message_waits_in_the_inbox(stack, tmp_path):
    store = Store(stack.settings.database_url)

    async def scenario() -> None:
        async with RasaClient("http://127.0.0.1:9", retries=0) as rasa:
            outcome = await Gateway(store, rasa).submit(
                "down-2", "帮我看看这条短信", channel="test"
            )
        assert outcome.pending and outcome.inbound_id is not None

    before = store.inbox_pending_count()
    asyncio.run(scenario())
    assert store.inbox_pending_count() == before + 1
