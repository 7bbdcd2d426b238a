"""``make run`` / ``antifraud run``: migrate the store, start and watch the services.

Starts the action server (``ACTION_SERVER_URL``'s port, 5055) and the Rasa server (``RASA_URL``'s
port, 5005, its actions pointed at that action server), waits until both answer, then watches
them: a service that exits is reported with the end of its log and started again (waiting 1, 2,
4 ... up to 60 s between attempts). Every few seconds, whatever the actions spooled while the
database was down is replayed into it. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.child import ChildProcess
from bot.dashboard.auth import sandbox_admin
from bot.nlp.rasa_server import RasaProcess
from bot.replay import replay_spool
from bot.services import ActionServerProcess, AppProcess
from bot.settings import Settings
from bot.store.db import upgrade
from bot.store.repo import Store
from bot.store.spool import Spool

logger = logging.getLogger(__name__)

SPOOL_EVERY_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 60.0


def port_of(url: str) -> int:
    parts = urlsplit(url)
    if parts.port:
        return parts.port
    return 443 if parts.scheme == "https" else 80


@dataclass
class Service:
    """One supervised child: how to start it, the running process, and its restarts."""

    name: str
    start: Callable[[], ChildProcess]
    child: ChildProcess | None = None
    restarts: int = 0
    backoff: float = field(default=1.0)

    def exited(self) -> bool:
        return self.child is not None and self.child.process.poll() is not None

    def log_tail(self) -> str:
        return self.child.log_tail(1500) if self.child is not None else ""


async def supervise(settings: Settings, stop: asyncio.Event) -> None:
    """Run the services until ``stop`` is set."""
    upgrade(settings.database_url)
    logger.info("store migrated: %s", _redacted(settings.database_url))
    action_url = f"http://127.0.0.1:{port_of(settings.action_server_url)}"
    services = [
        Service(
            "action server",
            lambda: ActionServerProcess(settings, port=port_of(settings.action_server_url)),
        ),
        Service(
            "Rasa server",
            lambda: RasaProcess(settings, port=port_of(settings.rasa_url), action_url=action_url),
        ),
        Service("bot and web server", lambda: AppProcess(settings)),
    ]
    store = Store(settings.database_url, retry_seconds=1.0)
    spool = Spool(settings.spool_dir)
    # In the sandbox, a first dashboard account, told here where the person running it looks.
    first_password = sandbox_admin(store) if settings.sandbox else None
    # Messages a crash left half-processed go back to the queue (nothing else runs yet).
    requeued = store.inbox_requeue_stale(0)
    if requeued:
        logger.warning("%d messages left in processing by a crash are pending again", requeued)
    try:
        for service in services:
            service.child = service.start()
        await asyncio.gather(*(s.child.wait_ready() for s in services if s.child))
        rasa = services[1].child
        web = f"http://{settings.web_host}:{settings.web_port}"
        where = f"sandbox: {web}/sandbox" if settings.sandbox else "Telegram bot running"
        print(
            f"Ready. Rasa on {rasa.url if rasa else settings.rasa_url} "
            f"(REST channel: /webhooks/rest/webhook), actions on {action_url}, {where}, "
            f"staff dashboard: {web}/. Ctrl-C stops.",
            flush=True,
        )
        if first_password is not None:
            print(
                f"Dashboard account made for this sandbox: admin / {first_password} "
                "(shown once; `.venv/bin/antifraud users passwd admin` changes it).",
                flush=True,
            )
        while not stop.is_set():
            for service in services:
                if service.exited():
                    await _restart(service)
            await asyncio.to_thread(replay_spool, store, spool)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), SPOOL_EVERY_SECONDS)
    finally:
        for service in reversed(services):
            if service.child is not None:
                service.child.stop()
        logger.info("all services stopped")


async def _restart(service: Service) -> None:
    logger.error(
        "%s exited; restarting in %.0f s. End of its log:\n%s",
        service.name,
        service.backoff,
        service.log_tail(),
    )
    await asyncio.sleep(service.backoff)
    service.backoff = min(service.backoff * 2, MAX_BACKOFF_SECONDS)
    service.restarts += 1
    service.child = service.start()
    try:
        await service.child.wait_ready()
    except RuntimeError as exc:
        logger.error("%s did not come back: %s", service.name, exc)
        return
    service.backoff = 1.0
    logger.info("%s is back (restart %d)", service.name, service.restarts)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***")
    return url


def run(settings: Settings) -> int:
    """Blocking entry point: runs until Ctrl-C or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await supervise(settings, stop)

    asyncio.run(main())
    return 0
