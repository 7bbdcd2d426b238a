"""Screenshots, mentions and commands in groups, through the real bot and the sandbox."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from bot.sandbox.state import BOT_USERNAME

pytestmark = pytest.mark.rasa

SCREENSHOTS = Path(__file__).resolve().parents[1] / "fixtures" / "screenshots"
GROUP = {"id": -1002001, "type": "supergroup", "title": "幸福村5组网格群"}
SUN = {"id": 2101, "first_name": "孙阿姨"}


def _reply_to(message: dict) -> int | None:
    replied = message.get("reply_to_message")
    if isinstance(replied, dict):
        return replied.get("message_id")
    return message.get("reply_to_message_id")


def _photo(name: str) -> str:
    return base64.b64encode((SCREENSHOTS / name).read_bytes()).decode()


def test_a_screenshot_is_read_and_checked(telegram_bot):
    private = {"id": 2102, "type": "private"}
    telegram_bot.send(
        chat=private,
        **{"from": {"id": 2102, "first_name": "周大爷"}},
        photo=_photo("wechat_task.png"),
    )
    [reply] = telegram_bot.wait_bot(private["id"], 1, timeout=40)
    assert "⚠️" in reply["text"] and "刷单返利" in reply["text"]


def test_a_photo_without_text_gets_a_clear_answer(telegram_bot):
    private = {"id": 2103, "type": "private"}
    telegram_bot.send(
        chat=private,
        **{"from": {"id": 2103, "first_name": "吴女士"}},
        photo=_photo("photo_no_text.png"),
    )
    [reply] = telegram_bot.wait_bot(private["id"], 1, timeout=40)
    assert "没有识别到文字" in reply["text"]


def test_a_mention_in_a_group_is_answered_by_a_reply(telegram_bot):
    sent = telegram_bot.send(
        chat=GROUP,
        **{"from": SUN},
        text=f"@{BOT_USERNAME} 有人让我点链接领医保补贴，要填银行卡号和验证码，是真的吗",
    )
    [reply] = telegram_bot.wait_bot(GROUP["id"], 1)
    assert _reply_to(reply) == sent["message"]["message_id"]
    assert "⚠️" in reply["text"]


def test_start_in_a_group_says_what_the_bot_needs(telegram_bot):
    group = {"id": -1002002, "type": "group", "title": "阳光小区1号楼"}
    telegram_bot.send(chat=group, **{"from": SUN}, text=f"/start@{BOT_USERNAME}")
    [reply] = telegram_bot.wait_bot(group["id"], 1)
    assert "管理员" in reply["text"] and "隐私模式" in reply["text"]


def test_a_screenshot_posted_in_a_group_is_checked_quietly(telegram_bot):
    group = {"id": -1002003, "type": "supergroup", "title": "幸福村6组网格群"}
    sent = telegram_bot.send(chat=group, **{"from": SUN}, photo=_photo("wechat_task.png"))
    [warning] = telegram_bot.wait_bot(group["id"], 1, timeout=40)
    assert _reply_to(warning) == sent["message"]["message_id"]
    assert "刷单返利" in warning["text"]
    # A photo with no text in a group: nothing to say, and nothing said.
    telegram_bot.send(chat=group, **{"from": SUN}, photo=_photo("photo_no_text.png"))
    time.sleep(3.0)
    assert len(telegram_bot.bot_messages(group["id"])) == 1


def test_a_screenshot_sent_as_a_file_is_read_and_a_pdf_is_not(telegram_bot):
    private = {"id": 2104, "type": "private"}
    who = {"id": 2104, "first_name": "郑阿姨"}
    document = {"file_name": "截图.png", "base64": _photo("sms_bank.png")}
    telegram_bot.send(chat=private, **{"from": who}, document=document)
    [reply] = telegram_bot.wait_bot(private["id"], 1, timeout=40)
    assert "⚠️" in reply["text"]
    pdf = {"file_name": "通知.pdf", "base64": base64.b64encode(b"%PDF-1.4 ...").decode()}
    telegram_bot.send(chat=private, **{"from": who}, document=pdf)
    reply = telegram_bot.wait_bot(private["id"], 2)[-1]
    assert "截图" in reply["text"]
