"""One sandbox server for the whole run (reset before each test), PTB bots and applications."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import Bot
from telegram.ext import Application, ApplicationBuilder

from bot.sandbox import SandboxState, create_app
from tests.sandbox.helpers import TOKEN, Control, Served, serve

GROUP = {"id": -1001, "type": "supergroup", "title": "幸福村3组网格群"}
AUNTIE = {"id": 42, "first_name": "王阿姨"}
UNCLE = {"id": 43, "first_name": "李大伯", "username": "li_dabo"}
PRIVATE = {"id": 42, "type": "private"}


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Served]:
    state = SandboxState(TOKEN, webhook_retry_initial=0.2, webhook_retry_max=0.5)
    with serve(create_app(state)) as served:
        yield served


@pytest.fixture
async def control(sandbox_server: Served) -> AsyncIterator[Control]:
    client = Control(sandbox_server.url)
    await client.post("/sandbox/reset", {})
    yield client
    await client.aclose()


@pytest.fixture
def base_url(sandbox_server: Served) -> str:
    return f"{sandbox_server.url}/sandbox/bot"


@pytest.fixture
def base_file_url(sandbox_server: Served) -> str:
    return f"{sandbox_server.url}/sandbox/file/bot"


@pytest.fixture
async def bot(control: Control, base_url: str, base_file_url: str) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=base_url, base_file_url=base_file_url) as tg_bot:
        yield tg_bot


def builder(base_url: str, base_file_url: str) -> ApplicationBuilder:
    return ApplicationBuilder().token(TOKEN).base_url(base_url).base_file_url(base_file_url)


@contextlib.asynccontextmanager
async def polling(app: Application) -> AsyncIterator[Application]:
    """Run ``app`` as the product does: initialise, start, poll; stop it afterwards."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=5)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()
