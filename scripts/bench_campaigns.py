"""A campaign to thousands of sandbox groups, for ``make bench`` (``scripts/bench.py`` runs it).

What it shows: the campaign sender keeps to Telegram's flood limits, gives each group the push
once, leaves no 429 unhandled, and keeps to that when it is stopped (SIGTERM) or killed
(SIGKILL) halfway and started again.

The sandbox Bot API runs in a process of its own (``python -m bot.sandbox --rate-limits``: 30
messages a second overall and 20 a minute into one group, a 429 with ``retry_after`` beyond
them). So does the sender (``bench_campaigns.py worker``): the real ``CampaignScheduler``
(APScheduler, the planner's ticks, the herald at ``CAMPAIGN_RATE``) with the bot built as
``bot/telegram/app.py`` builds it (``ExtBot``, ``AIORateLimiter(max_retries=5)``), on a file
SQLite store, until nothing is waiting; SIGTERM stops it gracefully. In the product the herald
runs inside the app process; alone here, its memory is the sender's own.

The store is migrated and set up once (a community, its grids, a leader, the groups registered)
and copied for each run, so every run starts on a fresh store; the sandbox is reset and each
group opened again by a resident's message. Three runs: (a) uninterrupted; (b) SIGTERM once
half the pushes are sent, then a new worker; (c) SIGKILL once half are sent, while a push is on
the way, then a new worker. What each group received is counted from the sandbox's chats and
checked against the store's record of every push. The planner is timed apart: one occurrence
for all the groups, planned and written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bot.child import ChildProcess
from bot.nlp.rasa_server import _free_port
from bot.settings import PROJECT_ROOT, Settings
from bot.store.campaigns import INTERRUPTED, SHANGHAI, NewCampaign, _reason_kind
from bot.store.db import upgrade
from bot.store.errors import StoreUnavailable
from bot.store.models import CampaignDelivery, Chat
from bot.store.repo import Store
from bot.store.types import utcnow
from campaigns.delivery import Herald
from campaigns.planner import Planner
from campaigns.scheduler import CampaignScheduler
from campaigns.templates import load_templates

TOKEN = "7000000002:bench-campaigns-token"
GROUPS = -1_000_800_000_000  # the groups' chat ids count down from here
RESIDENTS = 800_100_000
LEADER_TELEGRAM_ID = 800_000_001
TEMPLATE_KEY = "impersonate_authority-all"
KINDS = ("uninterrupted", "sigterm", "sigkill")
TAGS = ("elderly", "students", "young_workers", "new_residents", "women", "enterprise_staff")
GREETINGS = ("大家好，我是新搬来的。", "今天小区停水吗？", "群里的通知收到了，谢谢网格员。")
TELEGRAM_PER_SECOND = 30
TELEGRAM_PER_GROUP_MINUTE = 20
WORKER_MARK = "BENCH-WORKER "
IDLE_CHECK_SECONDS = 0.25
POLL_SECONDS = 0.01
KILL_WAIT_SECONDS = 2.0  # how long (c) waits, past half, for a push on the way to kill it at

logger = logging.getLogger("bench_campaigns")


class CampaignBenchError(RuntimeError):
    """The bench could not run (a process that would not start, a worker that hung)."""


@dataclass(frozen=True)
class Plan:
    groups: int = 2000
    grids: int = 10
    half: float = 0.5  # the share of pushes sent when (b) and (c) stop the worker
    # requests in flight to the sandbox's control API: more only adds httpx's own overhead
    http_concurrency: int = 4
    worker_timeout: float = 900.0  # a worker still running after this is killed: a failure
    planner_repeats: int = 3
    kinds: tuple[str, ...] = KINDS

    @classmethod
    def quick(cls, groups: int = 60) -> Plan:
        return cls(groups=groups, grids=3, worker_timeout=120.0, planner_repeats=2)


# --- the product's sender, as a process of its own --------------------------------------------


def product_bot(token: str, api: str) -> ExtBot:
    """The bot as ``bot.telegram.app.build_application`` makes it (its request: a pool of 256,
    10 s to connect, 30 s to read; Telegram's limits kept and ``RetryAfter`` retried 5 times)."""
    return ExtBot(
        token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=HTTPXRequest(connection_pool_size=256, connect_timeout=10, read_timeout=30),
        rate_limiter=AIORateLimiter(max_retries=5),
    )


def nothing_waiting(store: Store, planner: Planner) -> bool:
    """No push queued or on the way, and no campaign with a due time not planned yet."""
    if store.deliveries_waiting():
        return False
    now = utcnow()
    for campaign in store.active_campaigns():
        after = campaign.last_due_at or max(
            campaign.starts_at - timedelta(microseconds=1), campaign.created_at
        )
        if planner.due_times(campaign, after, now, limit=1):
            return False
    return True


async def worker(db_url: str, api: str, token: str) -> dict[str, Any]:
    """Run the scheduler until nothing is waiting or SIGTERM; what it did."""
    settings = Settings.from_env()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    started = time.time()
    store = Store(db_url)
    ended_by = "idle"
    stats: Counter[str] = Counter()
    try:
        async with product_bot(token, api) as bot:
            planner = Planner(store)
            herald = Herald(store, bot, rate=settings.campaign_rate, stats=stats)
            scheduler = CampaignScheduler(
                planner, herald, tick_seconds=settings.campaign_tick_seconds
            )
            await scheduler.start()
            try:
                while not await asyncio.to_thread(nothing_waiting, store, planner):
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), IDLE_CHECK_SECONDS)
                    if stop.is_set():
                        ended_by = "signal"
                        break
            finally:
                await scheduler.stop()  # the pushes on the way finish
    finally:
        store.close()
    return {
        "pid": os.getpid(),
        "started": started,
        "ended": time.time(),
        "ended_by": ended_by,
        "rate_setting": settings.campaign_rate,
        "stats": dict(stats),
        "peak_rss_mb": peak_rss_mb(os.getpid()),
    }


def worker_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_campaigns.py worker")
    parser.add_argument("--db", required=True, help="the store's DATABASE_URL")
    parser.add_argument("--api", required=True, help="the sandbox, http://HOST:PORT/sandbox")
    parser.add_argument("--token", default=TOKEN)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        summary = asyncio.run(worker(args.db, args.api, args.token))
    except (TelegramError, StoreUnavailable, sa.exc.SQLAlchemyError, OSError) as exc:
        print(f"bench_campaigns worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(WORKER_MARK + json.dumps(summary), flush=True)
    return 0


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (``VmHWM``) in MB; None once it has exited.

    Not ``ru_maxrss``: Linux carries the high-water mark over an ``exec``, so a child
    forked from a big parent would report the parent's size."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


@dataclass
class Worker:
    """One sender process, watched through /proc and reaped with ``wait4``."""

    process: subprocess.Popen[bytes]
    started: float
    out_path: Path
    exited: float | None = None
    exit_code: int | None = None  # negative: the signal that ended it
    peak_rss_mb: float | None = None  # the last VmHWM seen while it ran
    cpu_s: float | None = None  # user + system

    @classmethod
    def spawn(cls, db_url: str, api: str, log: Path) -> Worker:
        out_path = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".out")[1])
        command = [sys.executable, __file__, "worker", "--db", db_url, "--api", api]
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        with out_path.open("wb") as out, log.open("ab") as err:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err)
        return cls(process, time.time(), out_path)

    def poll(self) -> bool:
        """Whether it has exited (and is reaped)."""
        if self.exit_code is not None:
            return True
        peak = peak_rss_mb(self.process.pid)
        if peak is not None:
            self.peak_rss_mb = max(peak, self.peak_rss_mb or 0.0)
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.exited = time.time()
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.exit_code  # reaped here: Popen must not wait again
        self.cpu_s = usage.ru_utime + usage.ru_stime
        return True

    def kill(self) -> None:
        if not self.poll():
            self.process.kill()
            while not self.poll():
                time.sleep(POLL_SECONDS)

    def summary(self) -> dict[str, Any] | None:
        """What the worker printed at its end; None if it was killed."""
        try:
            lines = self.out_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        finally:
            self.out_path.unlink(missing_ok=True)
        for line in reversed(lines):
            if line.startswith(WORKER_MARK):
                return json.loads(line[len(WORKER_MARK) :])
        return None


# --- the sandbox -----------------------------------------------------------------------------


class SandboxServer(ChildProcess):
    """``python -m bot.sandbox --rate-limits`` on a free port."""

    what = "the sandbox Bot API"
    unavailable = CampaignBenchError
    poll_seconds = 0.1

    def __init__(self, timeout: float = 60.0) -> None:
        port = _free_port()
        command = [sys.executable, "-m", "bot.sandbox", "--port", str(port), "--token", TOKEN]
        self.spawn(
            [*command, "--rate-limits", "--log-level", "warning"],
            {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            url=f"http://127.0.0.1:{port}",
            timeout=timeout,
            prefix="bench-sandbox-",
        )

    @property
    def api(self) -> str:
        return f"{self.url}/sandbox"

    async def is_ready(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                return (await http.get(f"{self.url}/sandbox/health")).status_code == 200
        except httpx.HTTPError:
            return False


class Control:
    """The sandbox's control API: residents' messages, the flood limits, the chats."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=128, max_keepalive_connections=128),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body)
        if response.status_code != 200:
            raise CampaignBenchError(f"{path}: {response.status_code} {response.text[:200]}")
        return dict(response.json())

    async def reset(self) -> dict[str, Any]:
        """Empty the sandbox and turn Telegram's flood limits on (a reset turns them off)."""
        await self._post("/sandbox/reset", {})
        return await self._post(
            "/sandbox/limits",
            {
                "enabled": True,
                "per_second": TELEGRAM_PER_SECOND,
                "per_group_per_minute": TELEGRAM_PER_GROUP_MINUTE,
            },
        )

    async def refused(self) -> int:
        """429s the sandbox answered for breaking the flood limits since the reset."""
        return int((await self._post("/sandbox/limits", {}))["refused"])

    async def open_groups(self, externals: Sequence[str], concurrency: int) -> float:
        """A resident's message in each group (a group exists once someone wrote in it)."""
        slots = asyncio.Semaphore(concurrency)

        async def one(i: int, external: str) -> None:
            body = {
                "chat": {"id": int(external), "type": "supergroup", "title": f"{i + 1}号楼网格群"},
                "from": {"id": RESIDENTS + i, "first_name": "居民"},
                "text": GREETINGS[i % len(GREETINGS)],
            }
            async with slots:
                await self._post("/sandbox/send", body)

        started = time.perf_counter()
        await asyncio.gather(*(one(i, e) for i, e in enumerate(externals)))
        return time.perf_counter() - started

    async def received(self, externals: Sequence[str], concurrency: int) -> dict[str, list[str]]:
        """Each group's messages from the bot (their texts), as the sandbox holds them."""
        slots = asyncio.Semaphore(concurrency)
        got: dict[str, list[str]] = {}

        async def one(external: str) -> None:
            async with slots:
                response = await self.http.get(f"/sandbox/chats/{external}/messages")
            if response.status_code != 200:
                raise CampaignBenchError(f"chat {external}: {response.status_code}")
            messages = response.json()["messages"]
            got[external] = [m.get("text") or "" for m in messages if m["from_bot"]]

        await asyncio.gather(*(one(e) for e in externals))
        return got


# --- the store -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    after_name = stat.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Grid:
    community_id: int
    leader_id: int
    externals: tuple[str, ...]


def prepare_store(path: Path, plan: Plan) -> tuple[Grid, float]:
    """A migrated store with a community, its grids, a leader and every group registered."""
    started = time.perf_counter()
    url = sqlite_url(path)
    upgrade(url)
    store = Store(url)
    try:
        community = store.add_area("community", "东湖社区").id
        leader = store.add_user(
            "bench-leader", "grid_leader", "王网格长", telegram_user_id=LEADER_TELEGRAM_ID
        ).id
        store.add_leader(community, leader)
        grids = [store.add_area("grid", f"{k + 1}网格", community).id for k in range(plan.grids)]
        externals = []
        for i in range(plan.groups):
            external = str(GROUPS - i)
            tags = sorted({TAGS[i % len(TAGS)], TAGS[(i // len(TAGS)) % len(TAGS)]})
            title = f"{i + 1}号楼网格群"
            store.register_group("telegram", external, grids[i % len(grids)], tags, leader, title)
            externals.append(external)
    finally:
        store.close()
    return Grid(community, leader, tuple(externals)), time.perf_counter() - started


def copy_store(template: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (WAL included), through SQLite's backup."""
    source = sqlite3.connect(template)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def add_campaign(store: Store, grid: Grid, due_in: float) -> tuple[int, datetime]:
    """A one-off campaign from a template to every group of the community, due shortly.

    No quiet hours: the bench may run at night in Asia/Shanghai."""
    now = datetime.now(SHANGHAI)
    due = now + timedelta(seconds=due_in)
    made = store.add_campaign(
        NewCampaign(
            name="冒充公检法提醒（压测）",
            area_id=grid.community_id,
            schedule_kind="once",
            schedule={"at": due.isoformat()},
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=1),
            template_key=TEMPLATE_KEY,
            quiet_start=None,
            quiet_end=None,
        ),
        grid.leader_id,
    )
    return made.id, due


@dataclass(frozen=True)
class Push:
    external: str
    status: str
    reason: str | None
    sent_at: float | None


def pushes(store: Store, campaign_id: int) -> list[Push]:
    """Every delivery of the campaign, with the group's Telegram id."""
    d = CampaignDelivery

    def work(session: Any) -> list[Push]:
        rows = session.execute(
            sa.select(Chat.external_id, d.status, d.reason, d.sent_at)
            .join(Chat, Chat.id == d.chat_id)
            .where(d.campaign_id == campaign_id)
        ).all()
        return [
            Push(ext, status, reason, sent_at.timestamp() if sent_at else None)
            for ext, status, reason, sent_at in rows
        ]

    return store.run_in(work, write=False)


def is_flood(reason: str | None) -> bool:
    """A push's reason that says Telegram's flood control refused it."""
    return bool(reason) and any(
        word in reason  # type: ignore[operator]
        for word in ("RetryAfter", "Flood control", "Too Many Requests")
    )


def time_planning(template: Path, root: Path, grid: Grid, repeats: int) -> dict[str, Any]:
    """Seconds for ``Planner.tick`` to plan one occurrence for every group (read the campaign,
    render the template, write the occurrence and a delivery per group, in one transaction).
    Later repeats find the earlier pushes in each group's weekly budget."""
    path = root / "planner.db"
    copy_store(template, path)
    store = Store(sqlite_url(path))
    try:
        planner = Planner(store)
        seconds = []
        for _ in range(repeats):
            _, due = add_campaign(store, grid, due_in=0.05)
            time.sleep(max(0.0, (due - datetime.now(SHANGHAI)).total_seconds()) + 0.01)
            started = time.perf_counter()
            result = planner.tick(utcnow())
            seconds.append(time.perf_counter() - started)
            queued = sum(p.queued for p in result.planned)
            if queued != len(grid.externals):
                raise CampaignBenchError(
                    f"the planner queued {queued} pushes for {len(grid.externals)} groups"
                )
    finally:
        store.close()
    return {
        "groups": len(grid.externals),
        "seconds": seconds,
        "median_s": statistics.median(seconds),
    }


# --- figures ---------------------------------------------------------------------------------


def peak_in_a_second(times: Sequence[float]) -> int:
    """The most pushes recorded sent within any one second."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def sending_rate(times: Sequence[float], starts: Sequence[float]) -> tuple[float | None, float]:
    """(pushes a second while sending, seconds of sending): each worker's pushes over the time
    from its first to its last, the gap while none ran left out."""
    bounds = [*starts[1:], float("inf")]
    intervals = 0
    seconds = 0.0
    for start, end in zip(starts, bounds, strict=True):
        part = sorted(t for t in times if start <= t < end)
        if len(part) >= 2:
            intervals += len(part) - 1
            seconds += part[-1] - part[0]
    return (intervals / seconds if seconds > 0 else None), seconds


async def _wait_exit(w: Worker, deadline: float, log: Path) -> None:
    while not w.poll():
        if time.time() > deadline:
            w.kill()
            raise CampaignBenchError(f"a worker did not finish in time (see {log})")
        await asyncio.sleep(POLL_SECONDS)


async def _wait_sent(
    store: Store, campaign_id: int, target: int, w: Worker, deadline: float, log: Path
) -> int:
    """Sent pushes once at least ``target`` are; the worker must still be running."""
    while True:
        sent = store.delivery_counts(campaign_id).get("sent", 0)
        if sent >= target:
            return sent
        if w.poll():
            raise CampaignBenchError(
                f"the worker exited ({w.exit_code}) with {sent} of {target} sent (see {log})"
            )
        if time.time() > deadline:
            w.kill()
            raise CampaignBenchError(f"the worker did not send {target} in time (see {log})")
        await asyncio.sleep(POLL_SECONDS)


async def _wait_on_the_way(store: Store, campaign_id: int, seconds: float) -> int:
    """Pushes claimed and not yet marked, as soon as there are any (0 after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sending = store.delivery_counts(campaign_id).get("sending", 0)
        if sending:
            return sending
        await asyncio.sleep(POLL_SECONDS / 5)
    return 0


@dataclass
class Env:
    plan: Plan
    root: Path
    template: Path
    grid: Grid
    control: Control
    api: str
    sandbox_pid: int
    text: str
    log: Path
    runs: list[dict[str, Any]] = field(default_factory=list)


async def scenario(env: Env, kind: str) -> dict[str, Any]:
    """One run on a fresh store and a reset sandbox; what the groups got and the store says."""
    plan, grid, log = env.plan, env.grid, env.log
    path = env.root / f"{kind}.db"
    copy_store(env.template, path)
    url = sqlite_url(path)
    store = Store(url)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"\n===== run {kind}: {len(grid.externals)} groups =====\n")
    workers: list[Worker] = []
    try:
        limits = await env.control.reset()
        opened_s = await env.control.open_groups(grid.externals, plan.http_concurrency)
        campaign_id, due = add_campaign(store, grid, due_in=0.5)
        await asyncio.sleep(max(0.0, (due - datetime.now(SHANGHAI)).total_seconds()) + 0.05)
        sandbox_cpu = cpu_seconds(env.sandbox_pid)
        load = os.getloadavg()[0]
        workers.append(Worker.spawn(url, env.api, log))
        deadline = workers[0].started + plan.worker_timeout
        stopped: dict[str, Any] = {}
        if kind != "uninterrupted":
            target = max(1, round(plan.half * len(grid.externals)))
            first = workers[0]
            stopped["sent_at_signal"] = await _wait_sent(
                store, campaign_id, target, first, deadline, log
            )
            if kind == "sigkill":
                stopped["on_the_way"] = await _wait_on_the_way(
                    store, campaign_id, KILL_WAIT_SECONDS
                )
            first.poll()  # its memory's high-water mark, last seen alive
            signalled = time.time()
            os.kill(first.process.pid, signal.SIGKILL if kind == "sigkill" else signal.SIGTERM)
            await _wait_exit(first, signalled + 60.0, log)
            assert first.exited is not None
            stopped["exit_s"] = first.exited - signalled
            stopped["signalled"] = signalled
            workers.append(Worker.spawn(url, env.api, log))
        await _wait_exit(workers[-1], deadline, log)
        ended = time.time()
        sandbox_cpu = cpu_seconds(env.sandbox_pid) - sandbox_cpu
        started = Started(limits, opened_s, workers, stopped, ended, sandbox_cpu, load)
        return await figures(env, kind, store, campaign_id, started)
    finally:
        for w in workers:  # none is left running when the bench stops early
            w.kill()
            w.out_path.unlink(missing_ok=True)
        store.close()


@dataclass
class Started:
    """What a run did: the sandbox's limits, the groups opened, the workers, the stop."""

    limits: dict[str, Any]
    opened_s: float
    workers: list[Worker]
    stopped: dict[str, Any]
    ended: float
    sandbox_cpu_s: float
    load: float  # the 1-minute load average as the first worker started


async def figures(
    env: Env, kind: str, store: Store, campaign_id: int, started: Started
) -> dict[str, Any]:
    workers, stopped, ended = started.workers, started.stopped, started.ended
    limits, opened_s = started.limits, started.opened_s
    groups = env.grid.externals
    received = await env.control.received(groups, env.plan.http_concurrency)
    refused = await env.control.refused()
    rows = pushes(store, campaign_id)
    by_group = {p.external: p for p in rows}
    statuses = Counter(p.status for p in rows)
    failed = Counter(_reason_kind(p.reason) for p in rows if p.status == "failed")
    interrupted = [p for p in rows if p.status == "failed" and (p.reason or "") == INTERRUPTED]
    per_group = Counter(min(len(received[g]), 2) for g in groups)
    got_it = {g for g in groups if received[g]}
    sent_times = [p.sent_at for p in rows if p.status == "sent" and p.sent_at is not None]
    starts = [w.started for w in workers]
    rate, sending_s = sending_rate(sent_times, starts)
    summaries = [w.summary() for w in workers]
    per_worker = []
    for w, summary in zip(workers, summaries, strict=True):
        if summary and summary.get("peak_rss_mb"):
            w.peak_rss_mb = max(summary["peak_rss_mb"], w.peak_rss_mb or 0.0)
        mine = [t for t in sent_times if w.started <= t <= (w.exited or ended)]
        per_worker.append(
            {
                "exit_code": w.exit_code,
                "seconds": (w.exited or ended) - w.started,
                "first_push_after_s": (min(mine) - w.started) if mine else None,
                "sent": len(mine),
                "peak_rss_mb": w.peak_rss_mb,
                "cpu_s": w.cpu_s,
                "ended_by": summary["ended_by"] if summary else _without_summary(w),
                "stats": summary["stats"] if summary else None,
                "rate_setting": summary["rate_setting"] if summary else None,
            }
        )
    if "signalled" in stopped and len(workers) > 1:
        later = [t for t in sent_times if t >= workers[1].started]
        stopped["gap_s"] = (min(later) - stopped["signalled"]) if later else None
    # a group without the push and without a recorded reason for it
    lost = sum(
        1
        for g in groups
        if g not in got_it
        and (g not in by_group or by_group[g].status not in ("failed", "skipped"))
    )
    result = {
        "kind": kind,
        "groups": len(groups),
        "limits": {k: limits[k] for k in ("enabled", "per_second", "per_group_per_minute")},
        "open_groups_s": opened_s,
        "wall_s": ended - workers[0].started,
        "sending_s": sending_s,
        "rate": rate,
        "peak_1s": peak_in_a_second(sent_times),
        "statuses": dict(statuses),
        "sent": statuses.get("sent", 0),
        "failed": dict(failed),
        "waiting_left": statuses.get("queued", 0) + statuses.get("sending", 0),
        "received": {"0": per_group[0], "1": per_group[1], "2+": per_group[2]},
        "duplicates": per_group[2],
        "wrong_text": sum(t != env.text for g in groups for t in received[g]),
        "refused_429": refused,
        "retry_after_at_herald": sum(
            (s or {}).get("stats", {}).get("retry_after", 0) for s in summaries
        ),
        "unhandled_429": sum(1 for p in rows if p.status != "sent" and is_flood(p.reason)),
        "interrupted": len(interrupted),
        "interrupted_arrived": sum(1 for p in interrupted if p.external in got_it),
        "sent_not_received": sum(
            1 for p in rows if p.status == "sent" and p.external not in got_it
        ),
        "received_not_sent": sum(1 for g in got_it if by_group[g].status != "sent"),
        "lost": lost,
        "workers": per_worker,
        "peak_rss_mb": max((w.peak_rss_mb or 0.0) for w in workers),
        "worker_cpu_s": sum((w.cpu_s or 0.0) for w in workers),
        "sandbox_cpu_s": started.sandbox_cpu_s,
        "load_at_start": started.load,
        **({"stopped": stopped} if stopped else {}),
    }
    result["ok"] = problems(result) == []
    return result


def _without_summary(w: Worker) -> str:
    """How a worker that printed no summary ended: killed by a signal, or it failed."""
    return "killed" if (w.exit_code or 0) < 0 else f"failed ({w.exit_code})"


def problems(r: dict[str, Any]) -> list[str]:
    """What in a run breaks the promises: at most once, nothing lost, no 429 left unhandled."""
    found = []
    if r["duplicates"]:
        found.append(f"{r['duplicates']} groups got the push more than once")
    if r["unhandled_429"]:
        found.append(f"{r['unhandled_429']} pushes failed or left undelivered by a 429")
    if r["waiting_left"]:
        found.append(f"{r['waiting_left']} pushes still queued or on the way")
    if r["lost"] or r["sent_not_received"]:
        found.append(f"{r['lost'] + r['sent_not_received']} pushes lost")
    if r["received_not_sent"] != r["interrupted_arrived"]:
        found.append("groups received pushes the store does not account for")
    if r["wrong_text"]:
        found.append(f"{r['wrong_text']} messages were not the campaign's text")
    if r["kind"] != "sigkill" and r["sent"] != r["groups"]:
        found.append(f"{r['sent']} of {r['groups']} sent")
    if r["kind"] == "sigkill" and r["sent"] + r["interrupted"] != r["groups"]:
        found.append("pushes failed for another reason than the kill")
    if any(w["exit_code"] != 0 for w in r["workers"][-1:]):
        found.append("the last worker did not exit cleanly")
    return found


def summary_line(r: dict[str, Any]) -> str:
    rate = "-" if r["rate"] is None else f"{r['rate']:.1f}"
    line = (
        f"campaigns {r['kind']}: {r['groups']} groups, {r['sent']} sent in {r['wall_s']:.1f} s "
        f"({rate} msg/s sending, peak {r['peak_1s']}/s), groups 0/1/2+ = "
        f"{r['received']['0']}/{r['received']['1']}/{r['received']['2+']}, "
        f"429 refused {r['refused_429']}, unhandled {r['unhandled_429']}, "
        f"interrupted {r['interrupted']} ({r['interrupted_arrived']} arrived), "
        f"worker peak {r['peak_rss_mb']:.0f} MB"
    )
    issues = problems(r)
    return line + ("" if not issues else " — FAILED: " + "; ".join(issues))


# --- the whole campaign part -----------------------------------------------------------------


async def run_async(plan: Plan, log: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"plan": asdict(plan), "load_before": os.getloadavg()}
    root = Path(tempfile.mkdtemp(prefix="bench-campaigns-"))
    template = root / "template.db"
    grid, result["setup_s"] = prepare_store(template, plan)
    log.write_text("", encoding="utf-8")
    text = load_templates()[TEMPLATE_KEY].render()
    result["text_chars"] = len(text)
    result["planner"] = time_planning(template, root, grid, plan.planner_repeats)
    sandbox = SandboxServer()
    try:
        await sandbox.wait_ready()
        control = Control(sandbox.url)
        env = Env(plan, root, template, grid, control, sandbox.api, sandbox.process.pid, text, log)
        try:
            for kind in plan.kinds:
                run = await scenario(env, kind)
                env.runs.append(run)
                print("  " + summary_line(run), flush=True)
        finally:
            await control.aclose()
    finally:
        sandbox.stop()
        for path in root.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            root.rmdir()
    result["runs"] = env.runs
    result["load_after"] = os.getloadavg()
    result["ok"] = all(r["ok"] for r in env.runs)
    result["log"] = str(log)
    return result


def run(plan: Plan, log: Path) -> dict[str, Any]:
    return asyncio.run(run_async(plan, log))


# --- the report ------------------------------------------------------------------------------

TITLES = {
    "uninterrupted": "(a) uninterrupted",
    "sigterm": "(b) SIGTERM at half, restarted",
    "sigkill": "(c) SIGKILL at half, restarted",
}


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(c: dict[str, Any]) -> list[str]:
    runs = c["runs"]
    groups = runs[0]["groups"] if runs else c["plan"]["groups"]
    rate_setting = next(
        (w["rate_setting"] for r in runs for w in r["workers"] if w["rate_setting"]), None
    )
    load = ", ".join(f"{x:.1f}" for x in c.get("load_before", ()))
    firsts = [w["first_push_after_s"] for r in runs for w in r["workers"]]
    known = [x for x in firsts if x is not None]
    starting = f"{min(known):.1f} to {max(known):.1f}" if known else "-"
    pushes_done = sum(r["sent"] + r["interrupted"] for r in runs) or 1
    cpu_ms = f"{1000 * sum(r['worker_cpu_s'] for r in runs) / pushes_done:.1f}"
    sandbox_ms = f"{1000 * sum(r['sandbox_cpu_s'] for r in runs) / pushes_done:.1f}"
    out = [
        f"## Campaigns: one push to {groups:,} sandbox groups, the sender stopped halfway",
        "",
        "The sandbox Bot API in a process of its own with Telegram's flood limits on "
        f"({TELEGRAM_PER_SECOND} messages/s overall, {TELEGRAM_PER_GROUP_MINUTE}/min per group, "
        "a 429 beyond them); the sender in another (`scripts/bench_campaigns.py worker`): the "
        "real `CampaignScheduler` (APScheduler, planner ticks, the herald at `CAMPAIGN_RATE` "
        f"= {_num(rate_setting, 0)}/s) and the product's bot (`ExtBot`, "
        "`AIORateLimiter(max_retries=5)`), on a file SQLite store, until nothing waits. Each "
        "run starts on a fresh store and a reset sandbox; one campaign (a template, "
        f"{c['text_chars']} characters) to every group. Load average before: {load}"
        f"{'; run on its own (`--campaigns-only`)' if c.get('separate_run') else ''}.",
        "",
        "| run | load | wall (s) | sending (s) | rate (msg/s) | peak in 1 s | groups got it "
        "0 / 1 / 2+ | 429s refused | 429s unhandled | interrupted | worker peak RSS (MB) | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        got = r["received"]
        out.append(
            f"| {TITLES.get(r['kind'], r['kind'])} | {r['load_at_start']:.1f} | "
            f"{r['wall_s']:.1f} | {r['sending_s']:.1f} | "
            f"{_num(r['rate'])} | {r['peak_1s']} | {got['0']} / {got['1']} / {got['2+']} | "
            f"{r['refused_429']} | {r['unhandled_429']} | {r['interrupted']} | "
            f"{r['peak_rss_mb']:.0f} | {'yes' if r['ok'] else 'NO'} |"
        )
    out += [
        "",
        "Wall: from starting the first worker to the last one's exit, each worker's start "
        f"included ({starting} s from its start to its first push: Python's imports, the bot's "
        "`getMe`, the first tick planning the occurrence). "
        "Rate: pushes recorded sent over the time from each worker's first push to its last "
        "(the restart gap left out), against Telegram's "
        f"{TELEGRAM_PER_SECOND}/s; peak: the most recorded in any one second. Groups: the "
        "bot's messages in each group's chat in the sandbox. 429s refused: the sandbox's count "
        "of requests it refused for breaking the limits; unhandled: pushes failed, or not "
        "delivered, because of a 429 (`RetryAfter`). Load: the 1-minute load average as the "
        f"run started ({os.cpu_count()} cores; the sender's pace slips when it waits for CPU, "
        "and it never makes up for it in a burst). "
        f"CPU: the sender {cpu_ms} ms a push (its start included), the sandbox {sandbox_ms} "
        "ms.",
        "",
    ]
    for r in runs:
        s = r.get("stopped")
        if not s:
            continue
        gap = _num(s.get("gap_s"))
        first, second = r["workers"][0], r["workers"][-1]
        if r["kind"] == "sigterm":
            out.append(
                f"{TITLES['sigterm']}: SIGTERM with {s['sent_at_signal']} sent; the worker "
                f"finished the pushes on the way and exited ({first['exit_code']}) after "
                f"{s['exit_s']:.2f} s; the new one sent its first push {gap} s after the signal "
                f"and the remaining {second['sent']}. {r['sent']} sent in all, none twice."
            )
        else:
            arrived = r["interrupted_arrived"]
            out.append(
                f"{TITLES['sigkill']}: SIGKILL with {s['sent_at_signal']} sent and "
                f"{s.get('on_the_way', 0)} claimed and not yet marked; the new worker recorded "
                f"{r['interrupted']} as failed (interrupted) and did not send them again "
                f"({arrived} had reached the group before the kill, "
                f"{r['interrupted'] - arrived} had not); it sent the remaining "
                f"{second['sent']}, its first {gap} s after the kill. At most once: no group "
                "got it twice."
            )
    p = c["planner"]
    each = ", ".join(f"{x:.2f}" for x in p["seconds"])
    out += [
        "",
        f"Planning one occurrence for {p['groups']:,} groups (`Planner.tick`: the campaign "
        "read, the template rendered, the occurrence and a delivery per group written in one "
        f"transaction, SQLite file): {p['median_s']:.2f} s median ({each} s; later repeats "
        f"also count each group's earlier pushes against its weekly budget). Setting up the "
        f"store once (migrations, the grid, {p['groups']:,} groups registered one by one): "
        f"{c['setup_s']:.0f} s. Worker log: `{Path(c['log']).name}`.",
        "",
    ]
    for r in runs:
        issues = problems(r)
        if issues:
            out.append(f"**{TITLES.get(r['kind'], r['kind'])} FAILED:** " + "; ".join(issues))
    if not c["ok"]:
        out.append("")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["worker"]:
        return worker_main(args_list[1:])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=Plan.groups)
    parser.add_argument("--runs", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--log", type=Path, default=PROJECT_ROOT / "reports" / "campaigns.log")
    args = parser.parse_args(args_list)
    if args.groups < 2:
        parser.error("--groups must be at least 2")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    plan = Plan(groups=args.groups, kinds=tuple(args.runs))
    try:
        result = run(plan, args.log)
    except (CampaignBenchError, httpx.HTTPError) as exc:
        print(f"bench_campaigns: {exc}", file=sys.stderr)
        return 1
    print("\n".join(markdown(result)))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
