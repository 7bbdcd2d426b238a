"""The production profile for real: PostgreSQL for the store and Rasa's conversations, Redis as
Rasa's lock store. A report form in progress survives a restart of the Rasa server."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import httpx
import psycopg
import pytest
import redis

from bot.nlp.rasa_server import RasaProcess, _free_port
from bot.services import ActionServerProcess
from bot.store.repo import Store
from tests.store.conftest import postgres_url  # noqa: F401 - the fixture

pytestmark = pytest.mark.rasa

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
STORY = "有人在群里拉我刷单，先返了我5块钱，后来让我垫付3000说卡单了"


def _say(url: str, sender: str, message: str) -> str:
    response = httpx.post(
        f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=30
    )
    response.raise_for_status()
    return "\n".join(r.get("text") or "" for r in response.json())


def test_a_form_survives_a_rasa_restart_with_postgres_and_redis(
    settings,
    postgres_url,  # noqa: F811
    tmp_path,
):
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is unreachable ({exc}); set TEST_REDIS_URL")
    port = _free_port()
    live = dataclasses.replace(
        settings,
        database_url=postgres_url,
        redis_url=REDIS_URL,
        rasa_url=f"http://127.0.0.1:{port}",
        spool_dir=tmp_path / "spool",
    )
    action = ActionServerProcess(live)
    rasa = RasaProcess(live, port=port, action_url=action.url)
    try:
        asyncio.run(action.wait_ready())
        asyncio.run(rasa.wait_ready())
        before = int(client.info("stats")["total_commands_processed"])
        assert "发生了什么" in _say(rasa.url, "prod-1", "我要举报")
        # Rasa took and released the conversation's lock in Redis (INFO itself is one command).
        assert int(client.info("stats")["total_commands_processed"]) - before > 2
        with psycopg.connect(postgres_url) as conn:
            [(events,)] = conn.execute(
                "SELECT count(*) FROM events WHERE sender_id = 'prod-1'"
            ).fetchall()
        assert events > 0  # the conversation is in PostgreSQL, not in Rasa's memory

        rasa.stop()
        rasa = RasaProcess(live, port=port, action_url=action.url)
        asyncio.run(rasa.wait_ready())
        # The story is taken as the answer to the form's first question, as before the restart.
        assert "电话" in _say(rasa.url, "prod-1", STORY)
        assert Store(postgres_url).reports_of("prod-1") == []  # not finished yet
    finally:
        rasa.stop()
        action.stop()
        client.close()
