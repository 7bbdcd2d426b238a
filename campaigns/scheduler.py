"""The campaign scheduler: APScheduler (Asia/Shanghai) wakes the planner; the herald sends.

Two jobs drive ``Planner.tick``: a steady one every ``tick_seconds`` (which also catches up at
start, after a restart), and a one-off at the next due time the last tick found, so a push goes
out on the minute rather than up to a tick late. Planning is idempotent (each due time is
recorded once), so the two may overlap; a lock keeps them from running at once anyway. The
herald runs beside them as a task and is woken when a tick queues pushes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.store.campaigns import SHANGHAI
from bot.store.types import utcnow
from campaigns.delivery import Herald
from campaigns.planner import Planner, TickResult

logger = logging.getLogger(__name__)

TICK_SECONDS = 30.0


class CampaignScheduler:
    def __init__(
        self,
        planner: Planner,
        herald: Herald,
        *,
        tick_seconds: float = TICK_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.planner = planner
        self.herald = herald
        self.tick_seconds = tick_seconds
        self.clock = clock
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._herald_task: asyncio.Task[None] | None = None
        self.scheduler = AsyncIOScheduler(timezone=SHANGHAI)

    async def start(self) -> None:
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self.tick_seconds, timezone=SHANGHAI),
            id="campaign-tick",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(SHANGHAI),
        )
        self.scheduler.start()
        self._herald_task = asyncio.create_task(self.herald.run(self._stop), name="herald")

    async def tick(self) -> TickResult:
        async with self._lock:
            result = await asyncio.to_thread(self.planner.tick, self.clock())
        if any(p.queued for p in result.planned):
            self.herald.wake()
        for planned in result.planned:
            logger.info(
                "campaign occurrence %s %s: %d queued, skipped %s",
                planned.occurrence_id,
                planned.status,
                planned.queued,
                planned.skipped or "none",
            )
        if result.next_due is not None and self.scheduler.running:
            self.scheduler.add_job(
                self.tick,
                DateTrigger(run_date=result.next_due + timedelta(seconds=1), timezone=SHANGHAI),
                id="campaign-next",
                replace_existing=True,
                misfire_grace_time=None,
            )
        return result

    async def stop(self) -> None:
        """Stop planning; let the pushes on the way finish."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._stop.set()
        if self._herald_task is not None:
            await self._herald_task
