"""The action server and the application as child processes (``bot.child.ChildProcess``).

Rasa runs the custom actions (``actions/``) over HTTP in a separate process, the rasa-sdk action
server of the application environment. Tests, ``make run`` and ``make bench`` all start it
through ``ActionServerProcess`` so it is always started the same way.
"""

from __future__ import annotations

import logging
import os
import sys

import httpx

from bot.child import ChildProcess
from bot.nlp.rasa_server import _free_port
from bot.settings import PROJECT_ROOT, Settings

logger = logging.getLogger(__name__)


class ActionServerUnavailable(RuntimeError):
    """The action server exited or did not become ready."""


async def action_server_ready(url: str) -> bool:
    """True when an action server answers ``/health`` at ``url``."""
    try:
        async with httpx.AsyncClient(timeout=3.0) as http:
            response = await http.get(url.rstrip("/") + "/health")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class ActionServerProcess(ChildProcess):
    """``python -m rasa_sdk --actions actions`` on a loopback port, with the given environment."""

    what = "the action server"
    unavailable = ActionServerUnavailable

    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = port or _free_port()
        environment = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "DATABASE_URL": settings.database_url,
            "SPOOL_DIR": str(settings.spool_dir),
            "STORE_RETRY_SECONDS": str(settings.store_retry_seconds),
            "SCAM_THRESHOLD": str(settings.scam_threshold),
            "RASA_URL": settings.rasa_url,  # long messages are parsed part by part there
            "SANIC_HOST": os.environ.get("SANIC_HOST", "127.0.0.1"),
            **(env or {}),
        }
        command = [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port"]
        self.spawn(
            [*command, str(self.port)],
            environment,
            url=f"http://127.0.0.1:{self.port}",
            timeout=start_timeout,
            prefix="action-server-",
        )

    async def is_ready(self) -> bool:
        return await action_server_ready(self.url)


async def web_ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3.0) as http:
            return (await http.get(url.rstrip("/") + "/health")).status_code == 200
    except httpx.HTTPError:
        return False


class AppProcess(ChildProcess):
    """``antifraud app``: the Telegram bot (or the sandbox) and the web server on ``WEB_PORT``."""

    what = "the bot and web server"
    unavailable = ActionServerUnavailable
    stop_grace = 15.0

    def __init__(self, settings: Settings, *, start_timeout: float = 90.0) -> None:
        self.spawn(
            [sys.executable, "-m", "bot.cli", "app"],
            {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            url=f"http://{settings.web_host}:{settings.web_port}",
            timeout=start_timeout,
            prefix="antifraud-app-",
        )

    async def is_ready(self) -> bool:
        return await web_ready(self.url)
