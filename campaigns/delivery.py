"""The herald: sends queued campaign pushes through the bot, paced under Telegram's limits.

Telegram takes about 30 messages a second from a bot and 20 a minute into one group. The bot's
``AIORateLimiter`` holds every request to those limits and retries a ``RetryAfter`` a few times
itself; on top of it the herald sends campaign pushes at ``rate`` a second (25 by default), so
that replies to residents, which share the same limits, always find room. A ``RetryAfter`` that
still comes through pauses the herald for the time Telegram asked and puts the push back.

Each push is claimed just before it is sent (``queued`` → ``sending``), one at a time, with at
most ``in_flight`` on the way, and marked the moment Telegram answers: sent, put back (network
errors, 5xx, flood control; until its grace time runs out), or failed for good (the bot was
removed from the group, the chat is gone, a bad request). A process killed between sending and
marking leaves at most ``in_flight`` pushes ``sending``; at the next start they are failed as
interrupted, never sent again (at most once). A stop asked for (``stop``) lets the pushes on
the way finish first, so a restart loses nothing and repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot.store.campaigns import DeliveryToSend
from bot.store.errors import StoreUnavailable
from bot.store.repo import Store
from bot.store.types import utcnow

logger = logging.getLogger(__name__)

DEFAULT_RATE = 25.0
DEFAULT_IN_FLIGHT = 8
FIRST_RETRY_SECONDS = 2.0
LONGEST_RETRY_SECONDS = 300.0
IDLE_SECONDS = 1.0
# How often the queue is swept for pushes past their grace time (each claim skips them anyway).
EXPIRE_EVERY_SECONDS = 1.0
# A push claimed this long ago and never marked was lost with a process that ran beside this one
# (or a thread that hung): failed as interrupted. Far above any wait the rate limiter imposes.
STALE_SECONDS = 600.0
STALE_CHECK_SECONDS = 60.0


def _seconds(value: object) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)  # type: ignore[arg-type]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Herald:
    store: Store
    bot: Bot
    rate: float = DEFAULT_RATE
    in_flight: int = DEFAULT_IN_FLIGHT
    clock: Callable[[], datetime] = utcnow
    stats: Counter[str] = field(default_factory=Counter)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _paused_until: float = 0.0
    _next_slot: float = 0.0
    _expired_at: float = float("-inf")

    def wake(self) -> None:
        """New pushes are queued: look now rather than at the next idle check."""
        self._wake.set()

    async def recover(self) -> int:
        """At start: pushes a stopped process left on the way are failed, never resent."""
        interrupted = await asyncio.to_thread(self.store.deliveries_interrupted, 0.0)
        if interrupted:
            logger.warning(
                "%d campaign pushes were on the way when the last run stopped; recorded as "
                "failed (interrupted), not sent again",
                interrupted,
            )
        return interrupted

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; pushes already on the way are finished first."""
        await self.recover()
        checked = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - checked > STALE_CHECK_SECONDS:
                checked = time.monotonic()
                await asyncio.to_thread(self.store.deliveries_interrupted, STALE_SECONDS)
            try:
                handled = await self.drain(stop)
            except StoreUnavailable as exc:
                logger.warning("campaign sending waits for the store: %s", exc)
                handled = 0
            if handled == 0 and not stop.is_set():
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait until woken, stopped, or a second has passed (retries fall due by time)."""
        self._wake.clear()
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waiters, timeout=IDLE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self, timeout: float = 60.0) -> None:
        """Start as ``run`` does, then send until nothing is queued (retries included), or
        until ``timeout`` seconds have passed. For the tests and the bench."""
        await self.recover()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.drain()
            if await asyncio.to_thread(self.store.deliveries_waiting) == 0:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"campaign pushes still queued after {timeout:g} s")

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Send what is due now, paced; returns how many pushes were handled."""
        slots = asyncio.Semaphore(self.in_flight)
        tasks: set[asyncio.Task[None]] = set()
        handled = 0
        while stop is None or not stop.is_set():
            await self._pace()
            await slots.acquire()
            expire = time.monotonic() - self._expired_at >= EXPIRE_EVERY_SECONDS
            if expire:
                self._expired_at = time.monotonic()
            claimed = await asyncio.to_thread(
                self.store.deliveries_claim, 1, self.clock(), expire=expire
            )
            if not claimed:
                slots.release()
                break
            handled += 1
            task = asyncio.create_task(self._one(claimed[0], slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return handled

    async def _pace(self) -> None:
        """Wait for the next sending slot: ``rate`` a second, and any pause Telegram asked for."""
        now = time.monotonic()
        start = max(now, self._next_slot, self._paused_until)
        self._next_slot = start + 1.0 / self.rate
        if start > now:
            await asyncio.sleep(start - now)

    async def _one(self, delivery: DeliveryToSend, slots: asyncio.Semaphore) -> None:
        try:
            await self._deliver(delivery)
        except StoreUnavailable as exc:  # the send happened (or not); the mark did not
            logger.error("push %s: its outcome could not be recorded: %s", delivery.id, exc)
        finally:
            slots.release()

    async def _deliver(self, delivery: DeliveryToSend) -> None:
        try:
            message = await self.bot.send_message(int(delivery.chat_external_id), delivery.text)
        except RetryAfter as exc:
            wait = _seconds(exc.retry_after)
            self.stats["retry_after"] += 1
            self._paused_until = max(self._paused_until, time.monotonic() + wait)
            await self._later(delivery, exc, wait)
            return
        except ChatMigrated as exc:
            self.stats["migrated"] += 1
            await asyncio.to_thread(
                self.store.chat_migrated, delivery.chat_external_id, str(exc.new_chat_id)
            )
            await self._later(delivery, exc, 0.0)
            return
        except (Forbidden, BadRequest) as exc:
            self.stats["failed"] += 1
            logger.info("push %s to %s refused for good: %s", delivery.id, delivery.chat_id, exc)
            await asyncio.to_thread(self.store.delivery_fail, delivery.id, _reason(exc))
            return
        except (TelegramError, InvalidToken) as exc:  # network, time-out, 5xx
            self.stats["errors"] += 1
            delay = min(FIRST_RETRY_SECONDS * 2**delivery.attempts, LONGEST_RETRY_SECONDS)
            await self._later(delivery, exc, delay)
            return
        self.stats["sent"] += 1
        await asyncio.to_thread(self.store.delivery_sent, delivery.id, message.message_id)

    async def _later(self, delivery: DeliveryToSend, exc: BaseException, delay: float) -> None:
        now = self.clock()
        if now + timedelta(seconds=delay) >= delivery.expires_at:
            self.stats["expired"] += 1
            await asyncio.to_thread(
                self.store.delivery_fail, delivery.id, f"expired: {_reason(exc)}"
            )
            return
        self.stats["retried"] += 1
        await asyncio.to_thread(
            self.store.delivery_retry, delivery.id, _reason(exc), now + timedelta(seconds=delay)
        )
