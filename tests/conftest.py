"""Shared fixtures: settings, and one real Rasa server for the tests that need the model."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from bot.nlp.analysis import Analyzer, get_analyzer
from bot.nlp.rasa_server import RasaClient, RasaProcess, _free_port
from bot.nlp.taxonomy import Taxonomy, load_taxonomy
from bot.services import ActionServerProcess
from bot.settings import Settings
from bot.store.db import upgrade
from tests.bot_under_test import BotUnderTest, telegram_bot

__all__ = ["BotUnderTest", "telegram_bot"]  # the fixture is shared by tests/telegram and tests/web


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def taxonomy(settings: Settings) -> Taxonomy:
    return load_taxonomy(settings.taxonomy_path)


@pytest.fixture(scope="session")
def analyzer(settings: Settings) -> Analyzer:
    return get_analyzer(settings.taxonomy_path, settings.lookups_dir)


async def _answers(url: str) -> bool:
    async with RasaClient(url) as client:
        return await client.is_ready()


@dataclasses.dataclass
class Stack:
    """A Rasa server with its own action server and store, as ``make run`` starts them."""

    settings: Settings
    rasa_url: str
    action: ActionServerProcess
    rasa: RasaProcess

    async def restart_actions(self) -> None:
        """Start the action server again on the same port (after a test stopped it)."""
        self.action.stop()
        self.action = ActionServerProcess(self.settings, port=self.action.port)
        await self.action.wait_ready()


@pytest.fixture(scope="session")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole conversation: a fresh SQLite store, the action server, and Rasa using it."""
    root = tmp_path_factory.mktemp("stack")
    live = dataclasses.replace(
        settings,
        database_url=f"sqlite:///{root / 'antifraud.db'}",
        spool_dir=root / "spool",
        store_retry_seconds=1.0,
    )
    rasa_port = _free_port()
    live = dataclasses.replace(live, rasa_url=f"http://127.0.0.1:{rasa_port}")
    upgrade(live.database_url)
    action = ActionServerProcess(live)
    rasa: RasaProcess | None = None
    try:
        rasa = RasaProcess(live, port=rasa_port, action_url=action.url)
        asyncio.run(action.wait_ready())
        asyncio.run(rasa.wait_ready())
        current = Stack(dataclasses.replace(live, rasa_url=rasa.url), rasa.url, action, rasa)
        yield current
        action = current.action
    finally:
        if rasa is not None:
            rasa.stop()
        action.stop()


@pytest.fixture(scope="session")
def rasa_url(settings: Settings, request: pytest.FixtureRequest) -> Iterator[str]:
    """A Rasa server serving the trained model: ``RASA_URL`` if one answers, else the stack's."""
    if asyncio.run(_answers(settings.rasa_url)):
        yield settings.rasa_url
        return
    yield request.getfixturevalue("stack").rasa_url


@pytest.fixture(scope="session")
def rasa_settings(settings: Settings, rasa_url: str) -> Settings:
    """Settings that point at the session's Rasa server."""
    return dataclasses.replace(settings, rasa_url=rasa_url)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, as the action server does."""
    return "asyncio"
