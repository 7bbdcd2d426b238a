"""End to end: the real python-telegram-bot library against the sandbox, with the real model,
action server and store."""

from __future__ import annotations

import time

import pytest

from bot.store.repo import Store

pytestmark = pytest.mark.rasa

SEED = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"
GROUP = {"id": -1001001, "type": "supergroup", "title": "幸福村3组网格群"}
WANG = {"id": 1001, "first_name": "王阿姨"}
LI = {"id": 1002, "first_name": "李大爷"}


def _reply_to(message: dict) -> int | None:
    replied = message.get("reply_to_message")
    if isinstance(replied, dict):
        return replied.get("message_id")
    return message.get("reply_to_message_id")


def _buttons(message: dict) -> list[dict]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def test_seed_message_in_a_group_is_answered_by_a_reply(telegram_bot, stack):
    sent = telegram_bot.send(chat=GROUP, **{"from": WANG}, text=SEED)
    message_id = sent["message"]["message_id"]
    start = time.monotonic()
    [warning] = telegram_bot.wait_bot(GROUP["id"], 1)
    print(f"group warning after {time.monotonic() - start:.2f} s")
    assert _reply_to(warning) == message_id
    assert "刷单返利" in warning["text"] and "“下载软件做任务”" in warning["text"]
    store = Store(stack.settings.database_url)
    # (other tests of the session post in other groups of the same store)
    mine = store.reports_of(f"tg:{GROUP['id']}:{WANG['id']}")
    [report] = [r for r in mine if r.source == "group_auto"]
    assert report.scam_type == "rebate" and f"第{report.id}号" in warning["text"]
    # The same message again in the same group: no second warning.
    telegram_bot.send(chat=GROUP, **{"from": LI}, text=SEED)
    time.sleep(2.0)
    assert len(telegram_bot.bot_messages(GROUP["id"])) == 1


def test_an_ordinary_group_message_gets_no_answer(telegram_bot):
    group = {"id": -1001002, "type": "supergroup", "title": "阳光小区2号楼群"}
    telegram_bot.send(chat=group, **{"from": LI}, text="今晚小区停水，物业说明早六点恢复供水")
    telegram_bot.send(chat=group, **{"from": LI}, text="😀😀")
    time.sleep(2.5)
    assert telegram_bot.bot_messages(group["id"]) == []


def test_a_private_check_with_a_button_press(telegram_bot, stack):
    private = {"id": WANG["id"], "type": "private"}
    telegram_bot.send(chat=private, **{"from": WANG}, text=SEED)
    [warning] = telegram_bot.wait_bot(private["id"], 1)
    assert "刷单返利" in warning["text"]
    payloads = [b["callback_data"] for b in _buttons(warning)]
    assert payloads == ["/money_transferred", "/report_scam", "/subscribe"]
    telegram_bot.send(
        callback={
            "chat_id": private["id"],
            "message_id": warning["message_id"],
            "data": "/money_transferred",
            "from": WANG,
        }
    )
    urgent = telegram_bot.wait_bot(private["id"], 2)[-1]
    assert "110" in urgent["text"] and "银行" in urgent["text"]
    store = Store(stack.settings.database_url)
    report = store.reports_of(f"tg:{private['id']}:{WANG['id']}")[0]
    assert report.money_lost is True


def test_a_forwarded_message_is_checked(telegram_bot):
    private = {"id": LI["id"], "type": "private"}
    telegram_bot.send(
        chat=private,
        **{"from": LI},
        text="您好，我是京东客服，您的金条额度异常会影响征信，需要开启屏幕共享帮您注销学生账户",
        forward_sender_name="京东客服",
    )
    [reply] = telegram_bot.wait_bot(private["id"], 1)
    assert "征信" in reply["text"] or "客服" in reply["text"]
    assert "⚠️" in reply["text"]


def test_a_sticker_gets_a_short_answer(telegram_bot):
    private = {"id": 1004, "type": "private"}
    telegram_bot.send(chat=private, **{"from": {"id": 1004, "first_name": "陈女士"}}, sticker=True)
    [reply] = telegram_bot.wait_bot(private["id"], 1)
    assert "截图" in reply["text"]


def test_429_is_waited_out(telegram_bot):
    private = {"id": 1005, "type": "private"}
    import httpx

    httpx.post(
        f"{telegram_bot.web}/sandbox/faults",
        json={"method": "sendMessage", "status": 429, "retry_after": 1, "times": 1},
        timeout=5,
    ).raise_for_status()
    telegram_bot.send(chat=private, **{"from": {"id": 1005, "first_name": "小张"}}, text="你好")
    [reply] = telegram_bot.wait_bot(private["id"], 1, timeout=30)
    assert reply["text"]


def test_rasa_down_the_resident_is_told_and_answered_later(telegram_bot):
    private = {"id": 1006, "type": "private"}
    who = {"id": 1006, "first_name": "赵叔"}
    telegram_bot.proxy.down()
    try:
        telegram_bot.send(chat=private, **{"from": who}, text=SEED)
        [waiting] = telegram_bot.wait_bot(private["id"], 1)
        assert "稍后" in waiting["text"]
    finally:
        telegram_bot.proxy.up()
    later = telegram_bot.wait_bot(private["id"], 2, timeout=30)[-1]
    assert "刷单返利" in later["text"]
