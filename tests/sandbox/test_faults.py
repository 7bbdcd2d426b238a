"""Injected faults as python-telegram-bot meets them: flood waits, server errors, slow answers.

The product runs PTB with ``AIORateLimiter``, so a 429 must carry ``retry_after`` where PTB
reads it and the message must arrive after the wait; a 5xx must reach the bot as an error (and
not be stored); a delay must delay, long enough to make PTB time out when it waits less.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram import Bot, Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import AIORateLimiter, ContextTypes, MessageHandler, filters

from tests.sandbox.conftest import AUNTIE, GROUP, PRIVATE, builder, polling
from tests.sandbox.helpers import Control

pytestmark = pytest.mark.anyio


async def bot_texts(control: Control, chat_id: int) -> list[str]:
    return [m["text"] for m in await control.messages(chat_id) if m["from_bot"]]


async def test_429_is_waited_out_by_aioratelimiter(
    control: Control, base_url: str, base_file_url: str
) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    faults = await control.fault(method="sendMessage", status=429, retry_after=2)
    assert faults["faults"] == [
        {
            "method": "sendmessage",
            "status": 429,
            "retry_after": 2,
            "delay": 0.0,
            "description": None,
            "times": 1,
        }
    ]
    app = builder(base_url, base_file_url).rate_limiter(AIORateLimiter(max_retries=2)).build()
    async with app:
        started = time.monotonic()
        sent = await app.bot.send_message(42, "请勿向陌生人转账")
        waited = time.monotonic() - started
    assert 2.0 <= waited < 4.0  # retry_after + PTB's 0.1 s, then the second attempt
    assert sent.text == "请勿向陌生人转账"
    assert await bot_texts(control, 42) == ["请勿向陌生人转账"]  # sent once, not twice
    assert (await control.get("/sandbox/faults"))["faults"] == []  # used up


async def test_429_without_a_rate_limiter_is_retry_after(control: Control, bot: Bot) -> None:
    await control.send(GROUP, AUNTIE, text="大家好")
    await control.fault(method="sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter, match=r"Flood control exceeded\. Retry in 7 seconds"):
        await bot.send_message(GROUP["id"], "提醒")
    assert await bot_texts(control, GROUP["id"]) == []
    # The fault was used once; the next attempt goes through.
    assert (await bot.send_message(GROUP["id"], "提醒")).text == "提醒"


async def test_flood_limits_answer_429_and_the_rate_limiter_waits(
    control: Control, base_url: str, base_file_url: str
) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    limits = await control.post("/sandbox/limits", {"enabled": True, "per_second": 2})
    assert limits == {"enabled": True, "per_second": 2, "per_group_per_minute": 20, "refused": 0}
    app = builder(base_url, base_file_url).rate_limiter(AIORateLimiter(max_retries=3)).build()
    async with app:
        started = time.monotonic()
        for number in range(3):
            await app.bot.send_message(42, f"第{number + 1}条提醒")
        elapsed = time.monotonic() - started
    # Two messages fit in a second; the third is refused with retry_after 1 and sent after.
    assert 1.0 <= elapsed < 3.5
    assert await bot_texts(control, 42) == ["第1条提醒", "第2条提醒", "第3条提醒"]
    assert (await control.post("/sandbox/limits", {}))["refused"] >= 1  # the third, at first


async def test_5xx_is_an_error_for_ptb_and_nothing_is_stored(control: Control, bot: Bot) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    await control.fault(method="sendMessage", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(42, "这条发不出去")
    await control.fault(method="*", status=500, description="Internal Server Error: boom")
    with pytest.raises(NetworkError, match="boom"):
        await bot.get_me()
    await control.fault(method="sendMessage", status=503, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Service Unavailable"):
            await bot.send_message(42, "这条也发不出去")
    assert await bot_texts(control, 42) == []
    assert (await bot.send_message(42, "恢复了")).text == "恢复了"
    # A 4xx fault is the matching PTB error too.
    await control.fault(
        method="sendMessage", status=400, description="Bad Request: chat not found"
    )
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(42, "x")


async def test_a_fault_until_cleared_and_method_names_any_case(control: Control, bot: Bot) -> None:
    await control.fault(method="GETME", status=500, times=None)
    for _ in range(3):
        with pytest.raises(NetworkError):
            await bot.get_me()
    assert (await bot.get_my_commands()) == ()  # other methods are not affected
    assert len((await control.get("/sandbox/faults"))["faults"]) == 1
    cleared = await control.client.delete("/sandbox/faults")
    assert (cleared.status_code, cleared.json()) == (200, {"faults": []})
    assert (await control.get("/sandbox/faults"))["faults"] == []
    assert (await bot.get_me()).username == "antifraud_sandbox_bot"


async def test_a_delay_delays_and_ptb_times_out_when_it_waits_less(
    control: Control, bot: Bot
) -> None:
    await control.fault(method="getMe", delay=0.8)
    started = time.monotonic()
    assert (await bot.get_me()).is_bot
    assert 0.8 <= time.monotonic() - started < 2.0
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started < 0.5  # the fault was for one call

    await control.fault(method="getMe", delay=1.5)
    with pytest.raises(TimedOut):
        await bot.get_me(read_timeout=0.3)
    # A delay with a status: the error comes, late.
    await control.fault(method="getMe", delay=0.5, status=502)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.get_me()
    assert time.monotonic() - started >= 0.5


async def test_polling_survives_a_failing_and_a_slow_get_updates(
    control: Control, base_url: str, base_file_url: str
) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await got.put(update.message.text)

    # The first getUpdates fails, the second is slow; PTB's polling loop keeps going.
    await control.fault(method="getUpdates", status=502)
    await control.fault(method="getUpdates", delay=0.5)
    app = builder(base_url, base_file_url).build()
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    started = time.monotonic()
    async with polling(app):
        await control.send(PRIVATE, AUNTIE, text="网络不好也要收到")
        assert await asyncio.wait_for(got.get(), 15) == "网络不好也要收到"
        # PTB waits 1 s after a failed poll, then the slow one takes 0.5 s.
        assert time.monotonic() - started >= 1.5
    assert (await control.get("/sandbox/faults"))["faults"] == []


@pytest.mark.parametrize(
    ("fault", "description"),
    [
        ({}, 'a fault is {"method"'),
        ({"method": "sendTelepathy", "status": 500}, "'sendTelepathy' is not a Bot API method"),
        ({"method": "sendMessage"}, "a fault needs a status or a delay"),
        ({"method": "sendMessage", "status": 200}, "status must be an HTTP error status"),
        ({"method": "sendMessage", "status": "坏"}, "status must be an integer"),
        ({"method": "sendMessage", "delay": -1}, "delay must be 0 to 120 seconds"),
        ({"method": "sendMessage", "delay": "1"}, "delay must be 0 to 120 seconds"),
        ({"method": "sendMessage", "delay": 1e9}, "delay must be 0 to 120 seconds"),
        ({"method": "sendMessage", "status": 429, "retry_after": 0}, "retry_after must be 1"),
        (
            {"method": "sendMessage", "status": 502, "retry_after": 3},
            "retry_after goes with status 429",
        ),
        ({"method": "sendMessage", "status": 500, "times": 0}, "times must be at least 1"),
        ({"method": "sendMessage", "status": 500, "description": 5}, "description must be a"),
    ],
)
async def test_bad_faults_are_refused(
    control: Control, fault: dict[str, object], description: str
) -> None:
    error = await control.post("/sandbox/faults", fault, status=400)
    assert error["ok"] is False and error["error_code"] == 400
    assert description in error["description"]
    assert (await control.get("/sandbox/faults"))["faults"] == []


async def test_a_list_of_faults_is_all_or_nothing(control: Control) -> None:
    bad = [{"method": "sendMessage", "status": 500}, {"method": "sendMessage", "status": 99}]
    await control.post("/sandbox/faults", bad, status=400)
    assert (await control.get("/sandbox/faults"))["faults"] == []
    for body in (b"", b"[]", b"{not json"):
        response = await control.client.post("/sandbox/faults", content=body)
        assert response.status_code == 400, body
    good = [{"method": "sendMessage", "status": 500}, {"method": "*", "delay": 0.1, "times": 2}]
    listed = (await control.post("/sandbox/faults", good))["faults"]
    assert [(f["method"], f["times"]) for f in listed] == [("sendmessage", 1), ("*", 2)]
    bot = (await control.get("/sandbox/bot"))["faults"]
    assert bot == listed
    await control.post("/sandbox/reset", {})
    assert (await control.get("/sandbox/faults"))["faults"] == []
