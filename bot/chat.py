"""``antifraud chat``: the conversation in a terminal, through the store-first gateway.

Each line typed is stored in the inbox, sent to Rasa, and the replies printed with their buttons
numbered; typing a button's number presses it (its payload is sent). A message that could not be
checked yet is answered once the services are back, on the next line typed.
"""

from __future__ import annotations

import asyncio
import sys

from bot.gateway import Gateway
from bot.nlp.rasa_server import RasaClient
from bot.settings import Settings
from bot.store.db import upgrade
from bot.store.repo import InboundView, Store


def _show(replies: list[dict]) -> list[str]:
    payloads: list[str] = []
    for reply in replies:
        if reply.get("text"):
            print(f"助手: {reply['text']}")
        for button in reply.get("buttons") or []:
            payloads.append(str(button.get("payload", "")))
            print(f"   [{len(payloads)}] {button.get('title', '')}")
    return payloads


async def run_chat(settings: Settings, sender: str) -> int:
    upgrade(settings.database_url)
    store = Store(settings.database_url, retry_seconds=settings.store_retry_seconds)
    print(f"与反诈助手对话（{settings.rasa_url}）。输入消息后回车；数字选按钮；Ctrl-D 退出。")
    async with RasaClient(settings.rasa_url, timeout=settings.rasa_request_timeout) as rasa:
        gateway = Gateway(store, rasa)

        async def deliver(message: InboundView, replies: list[dict]) -> None:
            print(f"（稍早的消息有了回复：{message.text[:20]}）")
            _show(replies)

        payloads: list[str] = []
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return 0
            text = line.rstrip("\n")
            if text.strip().isdigit() and 0 < int(text) <= len(payloads):
                text = payloads[int(text) - 1]
            await gateway.retry_pending(deliver)
            outcome = await gateway.submit(sender, text, channel="cli")
            payloads = _show(outcome.replies)
