"""Webhook mode: setWebhook makes the sandbox POST updates to a URL, as Telegram does.

PTB's own webhook server (``Updater.start_webhook``) is the receiver in the first test: it
refuses a request without the right ``X-Telegram-Bot-Api-Secret-Token``, so an answer from the
bot proves the header. A recording receiver pins the details: the exact header and body, order,
retries after a failure and what getWebhookInfo reports. While a webhook is set getUpdates is
refused with 409, as on Telegram, and deleteWebhook keeps (or drops) the pending updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Bot, Update
from telegram.error import BadRequest, Conflict
from telegram.ext import ContextTypes, MessageHandler, filters

from tests.sandbox.conftest import AUNTIE, GROUP, PRIVATE, UNCLE, builder
from tests.sandbox.helpers import Control, serve

pytestmark = pytest.mark.anyio

SECRET = "grid-group_webhook-Secret-42"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    """A webhook endpoint that records every POST and fails the first ``fail`` of them."""

    url: str = ""
    fail: int = 0
    posts: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def endpoint(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.posts.append((dict(request.headers), body))
            if self.fail > 0:
                self.fail -= 1
                return JSONResponse({"error": "busy"}, status_code=500)
        return Response(status_code=200)

    def updates(self) -> list[Any]:
        with self.lock:
            return [body for _, body in self.posts]

    async def wait_for(self, count: int, timeout: float = 10) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.updates()) < count:
            assert time.monotonic() < deadline, f"{len(self.updates())} posts, not {count}"
            await asyncio.sleep(0.02)
        return self.updates()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    app = Starlette(routes=[Route("/hook", found.endpoint, methods=["POST"])])
    with serve(app) as served:
        found.url = f"{served.url}/hook"
        yield found


@contextlib.asynccontextmanager
async def webhook_app(
    base_url: str, base_file_url: str, on_text: Any
) -> AsyncIterator[tuple[str, Bot]]:
    """A PTB Application in webhook mode, its own server on a free port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    app = builder(base_url, base_file_url).build()
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    async with app:
        assert app.updater is not None
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="telegram",
            webhook_url=url,
            secret_token=SECRET,
        )
        await app.start()
        try:
            yield url, app.bot
        finally:
            await app.updater.stop()
            await app.stop()


async def test_ptb_webhook_mode_gets_updates_with_the_secret(
    control: Control, base_url: str, base_file_url: str
) -> None:
    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"已收到：{update.message.text}")

    async with webhook_app(base_url, base_file_url, on_text) as (url, bot):
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count, info.max_connections) == (url, 0, 40)
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()

        sent = await control.send(GROUP, AUNTIE, text="群里有人发红包链接")
        reply = await control.bot_reply(GROUP["id"], after=sent["message"]["message_id"])
        assert reply["text"] == "已收到：群里有人发红包链接"
        assert reply["reply_to_message_id"] == sent["message"]["message_id"]
        sent = await control.send(PRIVATE, AUNTIE, text="私聊也行吗")
        reply = await control.bot_reply(42, after=sent["message"]["message_id"])
        assert reply["text"] == "已收到：私聊也行吗"
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0 and info.last_error_message is None

        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.get_updates(timeout=0) == ()


async def test_deliveries_carry_the_secret_come_in_order_and_are_retried(
    control: Control, bot: Bot, receiver: Receiver
) -> None:
    receiver.fail = 2
    assert await bot.set_webhook(receiver.url, secret_token=SECRET)
    first = await control.send(GROUP, AUNTIE, text="第一条")
    second = await control.send(GROUP, UNCLE, text="第二条")
    posts = await receiver.wait_for(4)  # two refused attempts, then both updates
    ids = [post["update_id"] for post in posts]
    assert ids == [first["update_id"]] * 3 + [second["update_id"]]
    assert [post["message"]["text"] for post in posts[2:]] == ["第一条", "第二条"]
    for headers, _ in receiver.posts:
        assert headers[HEADER.lower()] == SECRET
        assert headers["content-type"] == "application/json"

    deadline = time.monotonic() + 5  # the last 200 was recorded; the sandbox is now told
    while (info := await bot.get_webhook_info()).pending_update_count:
        assert time.monotonic() < deadline, "a delivered update is still pending"
        await asyncio.sleep(0.02)
    assert info.url == receiver.url
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date is not None
    await asyncio.sleep(0.3)
    assert len(receiver.updates()) == 4  # a delivered update is not sent again


async def test_a_webhook_ends_a_waiting_long_poll(control: Control, bot: Bot) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=20))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    assert await bot.set_webhook("http://127.0.0.1:9/unreachable")
    with pytest.raises(Conflict, match="webhook is active"):
        await asyncio.wait_for(polling, 5)
    assert time.monotonic() - started < 2


async def test_delete_webhook_keeps_or_drops_pending_updates(control: Control, bot: Bot) -> None:
    # Nobody listens on port 9: the updates stay pending and the error is reported.
    assert await bot.set_webhook("http://127.0.0.1:9/nobody", secret_token=SECRET)
    await control.send(PRIVATE, AUNTIE, text="还在排队")
    deadline = time.monotonic() + 5
    while (info := await bot.get_webhook_info()).last_error_message is None:
        assert time.monotonic() < deadline, "the failed delivery was not reported"
        await asyncio.sleep(0.05)
    assert info.last_error_message == "Connection refused"
    assert info.pending_update_count == 1

    assert await bot.delete_webhook()
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["还在排队"]

    assert await bot.set_webhook("http://127.0.0.1:9/nobody")
    await control.send(PRIVATE, AUNTIE, text="这条会被丢掉")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == ()


async def test_set_webhook_refuses_bad_input(control: Control, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="an https url must be provided for webhook"):
        await bot.set_webhook("ftp://example.com/hook")
    with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
        await bot.set_webhook("https://example.com/hook", secret_token="有 空格")
    with pytest.raises(BadRequest, match="max_connections must be between 1 and 100"):
        await bot.set_webhook("https://example.com/hook", max_connections=0)
    assert (await bot.get_webhook_info()).url == ""  # nothing was set
    # An empty URL removes the webhook, as on Telegram.
    assert await bot.set_webhook("https://example.com/hook")
    assert await bot.set_webhook("")
    assert (await bot.get_webhook_info()).url == ""
