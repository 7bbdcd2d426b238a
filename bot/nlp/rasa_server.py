"""Talking to the Rasa server over HTTP, and starting one from ``models/`` when none answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import yaml
from sqlalchemy.engine import make_url

from bot.child import ChildProcess
from bot.settings import PROJECT_ROOT, Settings

logger = logging.getLogger(__name__)

# DIET's cost grows with the sequence length; what decides a verdict is in the first lines.
NLU_MAX_CHARS = 1000


class RasaUnavailable(RuntimeError):
    """The Rasa server did not answer, or answered with an error."""


class RasaClient:
    """A small async client for Rasa's HTTP API (``/status``, ``/model/parse``)."""

    def __init__(self, base_url: str, timeout: float = 30.0, retries: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def __aenter__(self) -> RasaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def is_ready(self) -> bool:
        """True when a Rasa server with a loaded model answers at ``base_url``."""
        try:
            response = await self._http.get("/status", timeout=3.0)
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        try:
            return bool(response.json().get("model_file"))
        except ValueError:
            return False

    async def parse(self, text: str) -> dict:
        """Rasa's NLU result for ``text``; retries network errors and 5xx with back-off."""
        payload = {"text": text[:NLU_MAX_CHARS]}
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                response = await self._http.post("/model/parse", json=payload)
                if response.status_code < 500:
                    response.raise_for_status()
                    return response.json()
                error: Exception = RasaUnavailable(f"Rasa answered {response.status_code}")
            except httpx.HTTPStatusError as exc:
                raise RasaUnavailable(f"Rasa refused the request: {exc}") from exc
            except (httpx.TransportError, ValueError) as exc:
                error = exc
            if attempt < self._retries:
                await asyncio.sleep(delay)
                delay *= 2
        raise RasaUnavailable(f"Rasa at {self.base_url} did not answer: {error}")

    async def send(self, sender: str, message: str, metadata: dict | None = None) -> list[dict]:
        """One turn over the REST channel: the bot's replies to ``message`` from ``sender``.

        Only a refused connection is retried (the message surely did not arrive); a timeout or
        an error after the message was sent is not, since the turn may have run.
        """
        payload = {"sender": sender, "message": message, "metadata": metadata or {}}
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                response = await self._http.post("/webhooks/rest/webhook", json=payload)
            except httpx.ConnectError as exc:
                if attempt == self._retries:
                    raise RasaUnavailable(
                        f"Rasa at {self.base_url} did not answer: {exc}"
                    ) from exc
                await asyncio.sleep(delay)
                delay *= 2
                continue
            except httpx.HTTPError as exc:
                raise RasaUnavailable(f"the turn at {self.base_url} failed: {exc!r}") from exc
            if response.status_code != 200:
                raise RasaUnavailable(f"Rasa answered {response.status_code} to a turn")
            try:
                replies = response.json()
            except ValueError as exc:
                raise RasaUnavailable("Rasa's answer to a turn was not JSON") from exc
            return replies if isinstance(replies, list) else []
        raise AssertionError("unreachable")


def find_model(model_dir: Path) -> Path:
    """The model to serve: ``antifraud.tar.gz`` if present, else the newest archive."""
    preferred = model_dir / "antifraud.tar.gz"
    if preferred.is_file():
        return preferred
    archives = sorted(model_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise FileNotFoundError(f"no trained model in {model_dir}: run 'make train' first")
    return archives[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoints_yaml(settings: Settings, action_url: str) -> str:
    """Rasa's endpoints: the action server; conversations kept in SQL (``RASA_TRACKER_DB``,
    else the store's PostgreSQL database, else a SQLite file beside the store's) so a form in
    progress survives a Rasa restart; the lock store in Redis when ``REDIS_URL`` is set (needed
    once several Rasa processes share the conversations)."""
    endpoints: dict = {"action_endpoint": {"url": f"{action_url.rstrip('/')}/webhook"}}
    tracker = settings.rasa_tracker_db or settings.database_url
    if tracker == "memory":
        pass
    elif tracker.startswith("postgresql"):
        url = make_url(tracker)
        endpoints["tracker_store"] = {
            "type": "SQL",
            "dialect": "postgresql",
            "url": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "db": url.database,
            "username": url.username,
            "password": url.password or "",
        }
    elif tracker.startswith("sqlite"):
        path = make_url(tracker).database
        folder = Path(path).parent if path else settings.spool_dir.parent
        endpoints["tracker_store"] = {
            "type": "SQL",
            "dialect": "sqlite",
            "db": str(folder / "rasa_conversations.db"),
        }
    if settings.redis_url:
        url = make_url(settings.redis_url)
        endpoints["lock_store"] = {
            "type": "redis",
            "url": url.host or "127.0.0.1",
            "port": url.port or 6379,
            "db": int(url.database or 0),
            "password": url.password,
            "key_prefix": "antifraud",
        }
    return yaml.safe_dump(endpoints, allow_unicode=True, sort_keys=False)


class RasaProcess(ChildProcess):
    """A Rasa server started from this process on a free loopback port."""

    what = "the Rasa server"
    unavailable = RasaUnavailable
    poll_seconds = 0.5
    stop_grace = 15.0

    def __init__(
        self, settings: Settings, *, port: int | None = None, action_url: str | None = None
    ) -> None:
        model = find_model(settings.model_dir)
        if not settings.rasa_python.is_file():
            raise RasaUnavailable(
                f"no Rasa server at {settings.rasa_url} and no Rasa environment at "
                f"{settings.rasa_python}: run 'make setup'"
            )
        port = port or _free_port()
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
        # Rasa reads the action server's address and its stores from an endpoints file only;
        # it may hold the database password, so it is private to this user (mkstemp: 0600)
        # and removed when the server stops.
        fd, name = tempfile.mkstemp(prefix="rasa-endpoints-", suffix=".yml")
        with os.fdopen(fd, "w") as out:
            out.write(endpoints_yaml(settings, action_url or settings.action_server_url))
        self.endpoints = Path(name)
        command = [
            str(settings.rasa_python),
            "-m",
            "rasa",
            "run",
            "--enable-api",
            "-i",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            str(model),
            "--credentials",
            str(PROJECT_ROOT / "credentials.yml"),
            "--endpoints",
            name,
        ]
        self.spawn(
            command,
            env,
            url=f"http://127.0.0.1:{port}",
            timeout=settings.rasa_start_timeout,
            prefix="rasa-server-",
        )

    async def is_ready(self) -> bool:
        """The model is loaded."""
        async with RasaClient(self.url) as client:
            return await client.is_ready()

    def cleanup(self) -> None:
        self.endpoints.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def rasa_server(settings: Settings) -> AsyncIterator[str]:
    """The URL of a ready Rasa server: ``RASA_URL`` if one answers, else one started here.

    A server started here listens on a free loopback port, serves the model from ``MODEL_DIR``
    and is stopped when the block ends.
    """
    async with RasaClient(settings.rasa_url) as probe:
        if await probe.is_ready():
            yield settings.rasa_url
            return
    server = RasaProcess(settings)
    try:
        await server.wait_ready()
        yield server.url
    finally:
        server.stop()
