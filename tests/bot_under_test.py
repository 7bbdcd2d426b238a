"""The ``telegram_bot`` fixture, shared through ``tests/conftest.py``: the bot for real.

``run_app`` (python-telegram-bot, the sandbox Bot API, the web server) runs in a thread and talks
to the session's Rasa and action server through a switchable TCP proxy, so a test can take Rasa
away mid-conversation and bring it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.nlp.rasa_server import _free_port
from bot.telegram.app import run_app

STAFF_CHAT = -100999  # the staff chat the fixture's bot sends urgent alerts to


class Proxy:
    """A loopback TCP proxy to ``target``; ``down()`` refuses connections until ``up()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.up()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.conns |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.conns -= {writer, up_writer}

    def up(self) -> None:
        async def start() -> None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)

    def down(self) -> None:
        async def stop() -> None:
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()
            for conn in list(self.conns):
                conn.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)


@dataclasses.dataclass
class BotUnderTest:
    web: str
    proxy: Proxy
    settings: object

    def send(self, **body) -> dict:
        response = httpx.post(f"{self.web}/sandbox/send", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def messages(self, chat_id: int) -> list[dict]:
        response = httpx.get(f"{self.web}/sandbox/chats/{chat_id}/messages", timeout=10)
        response.raise_for_status()
        data = response.json()
        return data["messages"] if isinstance(data, dict) else data

    def fault(self, **fault) -> None:
        httpx.post(f"{self.web}/sandbox/faults", json=fault, timeout=5).raise_for_status()

    def bot_messages(self, chat_id: int) -> list[dict]:
        return [m for m in self.messages(chat_id) if m.get("from_bot")]

    def wait_bot(self, chat_id: int, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.bot_messages(chat_id)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(
            f"the bot sent {len(self.bot_messages(chat_id))} messages to {chat_id}"
        )


@contextlib.contextmanager
def running_app(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``run_app(settings)`` in a thread of its own; yields the web server's address."""
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            loop.run_until_complete(run_app(settings, stop))
        except BaseException as exc:  # reported by the fixture
            failure.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    web = f"http://127.0.0.1:{settings.web_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not failure:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{web}/health", timeout=2).status_code == 200:
                break
        time.sleep(0.2)
    if failure:
        raise failure[0]
    time.sleep(1.0)  # polling started
    try:
        yield web
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    if failure:
        raise failure[0]


@pytest.fixture(scope="session")
def telegram_bot(stack) -> Iterator[BotUnderTest]:
    rasa_port = int(stack.rasa_url.rsplit(":", 1)[1])
    proxy = Proxy(rasa_port)
    settings = dataclasses.replace(
        stack.settings,
        rasa_url=f"http://127.0.0.1:{proxy.port}",
        rasa_request_timeout=10.0,
        telegram_bot_token="",
        web_port=_free_port(),
        group_warn_window_minutes=60,
        staff_chat_id=str(STAFF_CHAT),
    )
    try:
        with running_app(settings) as web:
            yield BotUnderTest(web, proxy, settings)
    finally:
        proxy.down()
