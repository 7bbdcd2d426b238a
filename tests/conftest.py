"""Shared fixtures: settings, and one real Rasa server for the tests that need the model."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from bot.nlp.analysis import Analyzer, get_analyzer
from bot.nlp.rasa_server import RasaClient, RasaProcess
from bot.nlp.taxonomy import Taxonomy, load_taxonomy
from bot.settings import Settings


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


@pytest.fixture(scope="session")
def rasa_url(settings: Settings) -> Iterator[str]:
    """A Rasa server serving the trained model: ``RASA_URL`` if one answers, else started here."""
    if asyncio.run(_answers(settings.rasa_url)):
        yield settings.rasa_url
        return
    server = RasaProcess(settings)
    try:
        asyncio.run(server.wait_ready())
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rasa_settings(settings: Settings, rasa_url: str) -> Settings:
    """Settings that point at the session's Rasa server."""
    return dataclasses.replace(settings, rasa_url=rasa_url)
