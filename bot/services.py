"""The action server as a child process: started on a port, waited for, stopped.

Rasa runs the custom actions (``actions/``) over HTTP in a separate process, the rasa-sdk action
server of the application environment. Tests, ``make run`` and ``make bench`` all start it
through ``ActionServerProcess`` so it is always started the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

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


class ActionServerProcess:
    """``python -m rasa_sdk --actions actions`` on a loopback port, with the given environment."""

    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = start_timeout
        self.log_path = Path(tempfile.mkstemp(prefix="action-server-", suffix=".log")[1])
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
        command = [
            sys.executable,
            "-m",
            "rasa_sdk",
            "--actions",
            "actions",
            "--port",
            str(self.port),
        ]
        logger.info("starting the action server on %s (log: %s)", self.url, self.log_path)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise ActionServerUnavailable(f"the action server exited early:\n{tail}")
            if await action_server_ready(self.url):
                return
            await asyncio.sleep(0.3)
        self.stop()
        raise ActionServerUnavailable(f"the action server was not ready within {self.timeout} s")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, *, keep_log: bool = False) -> None:
        """Terminate (killing after 10 s); the log is kept if it crashed or ``keep_log``."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


async def web_ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3.0) as http:
            return (await http.get(url.rstrip("/") + "/health")).status_code == 200
    except httpx.HTTPError:
        return False


class AppProcess:
    """``antifraud app``: the Telegram bot (or the sandbox) and the web server on ``WEB_PORT``."""

    def __init__(self, settings: Settings, *, start_timeout: float = 90.0) -> None:
        self.url = f"http://{settings.web_host}:{settings.web_port}"
        self.timeout = start_timeout
        self.log_path = Path(tempfile.mkstemp(prefix="antifraud-app-", suffix=".log")[1])
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "app"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise ActionServerUnavailable(f"the app exited early:\n{tail}")
            if await web_ready(self.url):
                return
            await asyncio.sleep(0.3)
        self.stop()
        raise ActionServerUnavailable(f"the app was not ready within {self.timeout} s")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.log_path.unlink(missing_ok=True)
