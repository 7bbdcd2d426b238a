"""Webhook mode: updates come in by POST to /telegram/webhook, and only with the secret token."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from bot.nlp.rasa_server import _free_port
from bot.telegram.app import SECRET_HEADER, WEBHOOK_PATH
from tests.bot_under_test import running_app

pytestmark = pytest.mark.rasa

SECRET = "webhook-secret-for-the-test_0123456789"


def _bot_messages(web: str, chat_id: int) -> list[dict]:
    got = httpx.get(f"{web}/sandbox/chats/{chat_id}/messages", timeout=10).json()
    return [m for m in got["messages"] if m.get("from_bot")]


def test_webhook_mode_answers_and_checks_the_secret(stack):
    port = _free_port()
    settings = dataclasses.replace(
        stack.settings,
        telegram_bot_token="",
        telegram_mode="webhook",
        telegram_webhook_url=f"http://127.0.0.1:{port}",
        telegram_webhook_secret=SECRET,
        web_port=port,
    )
    settings.validate()
    with running_app(settings) as web:
        # The sandbox posts the update to the webhook, with the secret, as Telegram does.
        private = {"id": 4001, "type": "private"}
        httpx.post(
            f"{web}/sandbox/send",
            json={"chat": private, "from": {"id": 4001, "first_name": "何阿姨"}, "text": "你好"},
            timeout=10,
        ).raise_for_status()
        deadline = time.monotonic() + 20
        while not _bot_messages(web, 4001) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _bot_messages(web, 4001), "no answer through the webhook"
        # Without the secret, or with a wrong one, nothing gets in; bad bodies are refused.
        update = {"update_id": 99, "message": {"message_id": 1, "date": 0, "chat": private}}
        url = f"{web}{WEBHOOK_PATH}"
        assert httpx.post(url, json=update, timeout=5).status_code == 403
        wrong = {SECRET_HEADER: SECRET[:-1] + "x"}
        assert httpx.post(url, json=update, headers=wrong, timeout=5).status_code == 403
        right = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        assert httpx.post(url, content=b"{not json", headers=right, timeout=5).status_code == 400
        assert httpx.post(url, content=b"[1, 2]", headers=right, timeout=5).status_code == 400
