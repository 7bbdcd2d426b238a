"""Running ASGI apps for real in the tests, and a client for the sandbox's control API.

Servers run under uvicorn in a background thread on a socket bound to a free port, so the test's
own event loop (python-telegram-bot's) talks to them over real HTTP, as a bot would.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

TOKEN = "123456789:sandbox-test-token"


@dataclass
class Served:
    """A running server: where it is and how to stop it."""

    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def serve(app: Any) -> Iterator[Served]:
    """Serve ``app`` with uvicorn in a thread until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield Served(port, server, thread)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class Control:
    """The sandbox's control API, over HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.client = httpx.AsyncClient(base_url=base, timeout=40)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def post(self, path: str, body: Any, status: int = 200) -> Any:
        response = await self.client.post(path, json=body)
        assert response.status_code == status, response.text
        return response.json()

    async def get(self, path: str, status: int = 200, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == status, response.text
        return response.json()

    async def send(self, chat: dict[str, Any], sender: dict[str, Any], **fields: Any) -> Any:
        """A user's message; returns ``{"update_id": ..., "message": ...}``."""
        return await self.post("/sandbox/send", {"chat": chat, "from": sender, **fields})

    async def press(self, chat_id: int, message_id: int, data: str, sender: dict[str, Any]) -> Any:
        body = {"chat_id": chat_id, "message_id": message_id, "data": data, "from": sender}
        return await self.post("/sandbox/send", {"callback": body})

    async def messages(self, chat_id: int, since: int = 0, wait: float = 0) -> list[Any]:
        path = f"/sandbox/chats/{chat_id}/messages"
        return (await self.get(path, since=since, wait=wait))["messages"]

    async def bot_reply(self, chat_id: int, after: int, wait: float = 10) -> dict[str, Any]:
        """The first message after ``after`` in the chat, waiting for the bot to send it."""
        messages = await self.messages(chat_id, since=after, wait=wait)
        assert messages, f"no message after {after} in chat {chat_id}"
        return messages[0]

    async def fault(self, **fault: Any) -> Any:
        return await self.post("/sandbox/faults", fault)


def png(width: int, height: int) -> bytes:
    """A real PNG of ``width`` x ``height`` grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + bytes([128, 64, 32]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
