"""The classifier's parse cache: repeated texts are parsed once, and the cache stays bounded."""

from __future__ import annotations

import asyncio

import pytest

from bot.nlp import classify
from bot.nlp.classify import Classifier
from bot.nlp.rasa_server import RasaClient

pytestmark = pytest.mark.rasa


class CountingClient(RasaClient):
    """The real client, counting the parses it asks Rasa for."""

    calls = 0

    async def parse(self, text: str) -> dict:
        self.calls += 1
        return await super().parse(text)


def test_repeats_are_parsed_once_and_the_oldest_is_dropped_when_full(
    rasa_settings, taxonomy, analyzer, monkeypatch
) -> None:
    monkeypatch.setattr(classify, "CACHE_SIZE", 2)
    texts = ["刷单返利，日赚三百，先垫付", "你好，今天下午开会吗", "您的快递丢失了，我们理赔"]

    async def run() -> tuple[int, list[str]]:
        async with CountingClient(rasa_settings.rasa_url) as client:
            classifier = Classifier(client, analyzer, taxonomy, rasa_settings.scam_threshold)
            for text in texts:
                await classifier.classify(text)
            first_calls = client.calls
            await classifier.classify(texts[2])  # kept: no new parse
            assert client.calls == first_calls
            await classifier.classify(texts[0])  # dropped when the third came: parsed again
            assert client.calls == first_calls + 1
            return client.calls, list(classifier._cache)

    calls, kept = asyncio.run(run())
    assert calls >= 4
    assert len(kept) == 2
