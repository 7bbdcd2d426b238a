"""The Telegram front end end to end, for ``make bench`` (``scripts/bench.py`` runs it).

``antifraud app`` runs as a child process (``python -m bot.cli app``) without a token, so it
serves the sandbox Bot API and the bot polls it, on the bench's Rasa server, action server and
SQLite store. The bench plays the residents through the sandbox's control API
(``POST /sandbox/send``) on a steady clock, open loop: each message goes out at its time
whether or not the bot has answered the ones before, as Telegram would deliver them.

1. Private chats: a mix of scam and ordinary test-set texts from many residents; the time from
   posting a message until the bot's first reply appears in the chat (a long poll on the
   chat's messages), and how many got no reply.
2. Groups: scam and ordinary texts; the time until the warning appears as a reply to a scam
   message (long polls on the groups), and whether an ordinary message got one.
3. Group ramp: mostly ordinary chat with ~10% scam, at increasing rates for a fixed time each.
   Per rate: the rate achieved, whether every message reached status ``done`` in the store's
   inbox, the warnings decided (an inbox row with a reply) and delivered (the sandbox shows
   the bot's reply to that message), the backlog when posting stops and how long it takes to
   drain, and the time to warning (the outbox's ``sent_at`` against the time posted: no
   observer in the app while it is loaded). A rate is held when nothing is lost or left
   undelivered and the backlog is gone within ``drain_limit`` seconds of the end.

Every text is made distinct (``（n）`` appended, as for the classify CLI figure), so the quiet
check's parse cache does not flatter the figures. The app's memory is its resident set
(``VmRSS``, and ``VmHWM``, the peak); CPU is each process's user and system time over a phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bot.child import ChildProcess
from bot.nlp.rasa_server import _free_port
from bot.services import ActionServerUnavailable, web_ready
from bot.settings import PROJECT_ROOT, Settings
from bot.store.models import InboundMessage, OutboundMessage
from bot.store.repo import Store
from bot.telegram.ids import sender_id

NOT_SCAM = "not_scam"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
TITLES = ("阿姨", "大爷", "姐", "哥", "奶奶", "叔")
GROUP_NAMES = ("幸福里", "阳光花园", "和平小区", "枫林苑", "新华社区", "锦绣家园")

# Ids of the residents and groups the bench plays, apart from each other per phase.
PRIVATE_USERS = 500_000_000
GROUP_USERS = 600_000_000
GROUPS = -1_000_700_000_000


@dataclass(frozen=True)
class Plan:
    """What the Telegram part runs; ``quick()`` is the short form for ``--quick``."""

    rate: float = 5.0  # messages a second in the private and group latency runs
    seconds: float = 60.0  # how long each latency run posts
    users: int = 100  # residents writing privately (each writes every users/rate seconds)
    latency_groups: int = 20
    ramp: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
    ramp_seconds: float = 60.0
    ramp_groups: int = 100
    scam_share: float = 0.1  # of the ramp's group messages
    drain_limit: float = 5.0  # held: the backlog is gone this long after posting stops
    settle_limit: float = 90.0  # how long to wait for the rest before calling it lost
    reply_timeout: float = 60.0  # a private message without a reply by then has none
    stop_when_not_held: bool = True

    @classmethod
    def quick(cls) -> Plan:
        return cls(seconds=15.0, users=25, ramp_seconds=15.0, settle_limit=45.0)


# --- texts -----------------------------------------------------------------------------------


def split_pool(pool: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(scam texts, ordinary texts) of the labelled test set, each text once."""
    scam = sorted({text for text, label in pool if label != NOT_SCAM})
    ordinary = sorted({text for text, label in pool if label == NOT_SCAM})
    if not scam or not ordinary:
        raise ValueError("the bench needs both scam and ordinary texts in tests/nlu")
    return scam, ordinary


class Texts:
    """Distinct messages from the test texts: every one gets its own number."""

    def __init__(self, scam: list[str], ordinary: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.scam = scam
        self.ordinary = ordinary
        self._serial = 0
        self._scam_order: list[str] = []

    def _number(self, text: str) -> str:
        self._serial += 1
        return f"{text}（{self._serial}）"

    def next_scam(self) -> str:
        """Scam texts without repeats until all were used (a repeat may be deduplicated)."""
        if not self._scam_order:
            self._scam_order = self.rng.sample(self.scam, len(self.scam))
        return self._number(self._scam_order.pop())

    def next_ordinary(self) -> str:
        return self._number(self.rng.choice(self.ordinary))

    def mix(self, n: int, scam_share: float) -> list[tuple[str, bool]]:
        """``n`` (text, is_scam), scam ones spread evenly through the sequence."""
        out = []
        for k in range(n):
            if math.floor((k + 1) * scam_share + 1e-9) > math.floor(k * scam_share + 1e-9):
                out.append((self.next_scam(), True))
            else:
                out.append((self.next_ordinary(), False))
        return out


def resident(user_id: int) -> dict:
    name = SURNAMES[user_id % len(SURNAMES)] + TITLES[(user_id // 7) % len(TITLES)]
    return {"id": user_id, "first_name": name, "language_code": "zh-hans"}


def group(chat_id: int) -> dict:
    name = GROUP_NAMES[abs(chat_id) % len(GROUP_NAMES)]
    return {"id": chat_id, "type": "supergroup", "title": f"{name}{abs(chat_id) % 1000}号网格群"}


# --- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_summary(seconds: Sequence[float]) -> dict:
    ms = [1000 * s for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms) if ms else None,
        "p95_ms": percentile(ms, 0.95),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms) if ms else None,
    }


# --- processes -------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB; empty when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields_after_name = stat.rsplit(")", 1)[1].split()
    return (int(fields_after_name[11]) + int(fields_after_name[12])) / CLOCK_TICKS


class CpuMeter:
    """CPU used by each watched process between ``start()`` and ``stop()``, in % of a core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def start(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._self = time.process_time()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        used = {name: cpu_seconds(pid) - self._cpu[name] for name, pid in self.pids.items()}
        used["bench"] = time.process_time() - self._self
        return {name: round(100 * seconds / wall, 1) for name, seconds in used.items()}


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as the environment variable ``Settings.from_env`` reads it back from."""
    env = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        env[f.name.upper()] = str(value)
    return env


class App(ChildProcess):
    """``python -m bot.cli app`` in a child process, configured by ``settings`` (all of them:
    ``AppProcess`` passes only the bench's own environment on)."""

    what = "the bot and web server"
    unavailable = ActionServerUnavailable
    stop_grace = 20.0

    def __init__(self, settings: Settings, *, start_timeout: float = 120.0) -> None:
        self.spawn(
            [sys.executable, "-m", "bot.cli", "app"],
            {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **settings_env(settings)},
            url=f"http://{settings.web_host}:{settings.web_port}",
            timeout=start_timeout,
            prefix="bench-app-",
        )

    async def is_ready(self) -> bool:
        return await web_ready(self.url)


# --- the sandbox, played as residents ---------------------------------------------------------


class SendFailed(RuntimeError):
    """The sandbox did not take a message."""


class Sandbox:
    def __init__(self, web: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=web,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=400, max_keepalive_connections=100),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, chat: dict, user: dict, text: str) -> int:
        """Post ``text`` as ``user`` in ``chat``; the message's id in that chat."""
        try:
            response = await self.http.post(
                "/sandbox/send", json={"chat": chat, "from": user, "text": text}
            )
        except httpx.HTTPError as exc:
            raise SendFailed(repr(exc)) from exc
        if response.status_code != 200:
            raise SendFailed(f"{response.status_code}: {response.text[:200]}")
        return int(response.json()["message"]["message_id"])

    async def messages(self, chat_id: int, since: int = 0, wait: float = 0.0) -> list[dict]:
        response = await self.http.get(
            f"/sandbox/chats/{chat_id}/messages",
            params={"since": since, "wait": f"{wait:.2f}"},
            timeout=wait + 30.0,
        )
        response.raise_for_status()
        return response.json()["messages"]

    async def pending_updates(self) -> int:
        """Updates the bot has not fetched yet (what Telegram would still hold for it)."""
        response = await self.http.get("/sandbox/bot")
        response.raise_for_status()
        return int(response.json()["pending_update_count"])

    async def first_reply(self, chat_id: int, after: int, deadline: float) -> tuple[float, int]:
        """When (perf_counter) the bot's first message after ``after`` appeared, and how
        many it had sent by then; (nan, 0) if none came before ``deadline``."""
        since = after
        while (remaining := deadline - time.perf_counter()) > 0:
            found = await self.messages(chat_id, since, min(remaining, 25.0))
            now = time.perf_counter()
            replies = [m for m in found if m["from_bot"]]
            if replies:
                return now, len(replies)
            if found:
                since = max(m["message_id"] for m in found)
        return float("nan"), 0


def achieved_rate(accepted: Sequence[float]) -> float | None:
    """Messages a second the sandbox took: the times its answers to the posts came back."""
    if len(accepted) < 2:
        return None
    span = max(accepted) - min(accepted)
    return (len(accepted) - 1) / span if span > 0 else None


async def paced(
    count: int, rate: float, post: Callable[[int], Awaitable[None]]
) -> tuple[list[asyncio.Task], float]:
    """Start ``post(k)`` for k = 0..count-1 at ``rate`` a second; the tasks, and the seconds
    from the first start to the last."""
    tasks: list[asyncio.Task] = []
    start = time.perf_counter()
    for k in range(count):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(k)))
    return tasks, time.perf_counter() - start


@dataclass
class Posted:
    """One message the bench posted in a group."""

    chat_id: int
    user_id: int
    text: str
    scam: bool
    at: float = 0.0  # time.time() just before posting
    at_perf: float = 0.0
    accepted_perf: float = 0.0  # when the sandbox's answer to the post came back
    message_id: int | None = None
    error: str | None = None

    @property
    def sender(self) -> str:
        return sender_id(self.chat_id, self.user_id)


# --- the store's view ------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The inbox and outbox rows of a set of chats, at one moment."""

    inbox: dict[str, int] = field(default_factory=dict)  # status -> rows
    decided: int = 0  # done rows with a reply (a warning decided)
    outbox: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.inbox.values())

    @property
    def done(self) -> int:
        return self.inbox.get("done", 0)

    def settled(self, posted: int) -> bool:
        """Every posted message done, and every decided reply sent (or refused for good)."""
        finished = self.outbox.get("sent", 0) + self.outbox.get("failed", 0)
        return self.done >= posted and sum(self.outbox.values()) >= self.decided == finished


class StoreView:
    """Reads the bench's store while the app writes it (SQLite WAL: readers do not block)."""

    def __init__(self, database_url: str) -> None:
        self.store = Store(database_url)

    def close(self) -> None:
        self.store.close()

    def snapshot(self, chats: Sequence[str]) -> Snapshot:
        inbox_t, outbox_t = InboundMessage.__table__, OutboundMessage.__table__

        def work(session: Any) -> Snapshot:
            snap = Snapshot()
            rows = session.execute(
                sa.select(inbox_t.c.status, inbox_t.c.replies).where(
                    inbox_t.c.chat_external_id.in_(chats)
                )
            ).all()
            for status, replies in rows:
                snap.inbox[status] = snap.inbox.get(status, 0) + 1
                snap.decided += status == "done" and bool(replies)
            for status, count in session.execute(
                sa.select(outbox_t.c.status, sa.func.count())
                .where(outbox_t.c.chat_external_id.in_(chats))
                .group_by(outbox_t.c.status)
            ).all():
                snap.outbox[status] = int(count)
            return snap

        return self.store.run_in(work, write=False)

    def inbox_rows(self, chats: Sequence[str]) -> list[Any]:
        table = InboundMessage.__table__
        return self.store.run_in(
            lambda s: s.execute(sa.select(table).where(table.c.chat_external_id.in_(chats))).all(),
            write=False,
        )

    def outbox_rows(self, chats: Sequence[str]) -> list[Any]:
        table = OutboundMessage.__table__
        return self.store.run_in(
            lambda s: s.execute(sa.select(table).where(table.c.chat_external_id.in_(chats))).all(),
            write=False,
        )


async def wait_settled(
    view: StoreView, chats: list[str], posted: int, limit: float, every: float = 0.25
) -> tuple[float | None, Snapshot]:
    """Poll until every message is done and every decided reply sent: (the perf_counter time
    it was first seen so, or None if not within ``limit`` seconds; the last snapshot)."""
    deadline = time.perf_counter() + limit
    while True:
        snap = await asyncio.to_thread(view.snapshot, chats)
        now = time.perf_counter()
        if snap.settled(posted):
            return now, snap
        if now >= deadline:
            return None, snap
        await asyncio.sleep(every)


# --- the runs --------------------------------------------------------------------------------


@dataclass
class Bench:
    settings: Settings
    sandbox: Sandbox
    view: StoreView
    cpu: CpuMeter
    app: App
    texts: Texts
    plan: Plan

    def memory(self) -> dict[str, float]:
        return proc_status(self.app.process.pid)

    async def warm_up(self) -> dict:
        """A few private and group messages, each waited for: models loaded, caches made."""
        start = time.perf_counter()
        chat = GROUPS - 999
        for k, (text, _scam) in enumerate(self.texts.mix(12, 0.5)):
            user = PRIVATE_USERS - 1 - k
            mid = await self.sandbox.send({"id": user, "type": "private"}, resident(user), text)
            await self.sandbox.first_reply(user, mid, time.perf_counter() + 60.0)
            await self.sandbox.send(group(chat), resident(GROUP_USERS - 1 - k), text)
        waited, _ = await wait_settled(self.view, [str(chat)], 12, 60.0)
        return {"seconds": time.perf_counter() - start, "group_settled": waited is not None}

    async def private_latency(self) -> dict:
        plan = self.plan
        count = max(1, round(plan.rate * plan.seconds))
        mixed = self.texts.mix(count, 0.5)
        latencies: list[float] = []
        posting: list[float] = []
        accepted: list[float] = []
        failed: list[str] = []
        no_reply = 0
        poll_errors: list[str] = []
        by_kind: dict[bool, list[float]] = {True: [], False: []}

        async def post(k: int) -> None:
            nonlocal no_reply
            text, scam = mixed[k]
            user = PRIVATE_USERS + k % plan.users
            start = time.perf_counter()
            try:
                mid = await self.sandbox.send(
                    {"id": user, "type": "private"}, resident(user), text
                )
            except SendFailed as exc:
                failed.append(str(exc))
                return
            accepted.append(time.perf_counter())
            posting.append(accepted[-1] - start)
            try:
                at, seen = await self.sandbox.first_reply(user, mid, start + plan.reply_timeout)
            except httpx.HTTPError as exc:  # the chat could not be read: counted as no reply
                poll_errors.append(repr(exc))
                seen = 0
            if seen:
                latencies.append(at - start)
                by_kind[scam].append(at - start)
            else:
                no_reply += 1

        self.cpu.start()
        tasks, wall = await paced(count, plan.rate, post)
        await asyncio.gather(*tasks)
        cpu = self.cpu.stop()
        return {
            "messages": count,
            "users": min(plan.users, count),
            "seconds": wall,
            "achieved_rate": achieved_rate(accepted),
            "send_failed": len(failed),
            "send_errors": failed[:5],
            "replied": len(latencies),
            "no_reply": no_reply,
            "poll_errors": poll_errors[:5],
            "latency": latency_summary(latencies),
            "latency_scam": latency_summary(by_kind[True]),
            "latency_ordinary": latency_summary(by_kind[False]),
            "post_p50_ms": 1000 * statistics.median(posting) if posting else None,
            "cpu_percent": cpu,
            "app_memory_mb": self.memory(),
        }

    async def group_latency(self) -> dict:
        """Scam and ordinary texts in groups; long polls on each group see the warnings."""
        plan = self.plan
        count = max(2, round(plan.rate * plan.seconds))
        base = GROUPS - 10_000
        chat_ids = [base - g for g in range(plan.latency_groups)]
        messages = [
            Posted(chat_ids[k % len(chat_ids)], GROUP_USERS + k, text, scam)
            for k, (text, scam) in enumerate(self.texts.mix(count, 0.5))
        ]
        arrivals: dict[tuple[int, int], float] = {}  # (chat, replied-to id) -> perf_counter
        stop = asyncio.Event()

        async def watch(chat_id: int) -> None:
            since = 0
            while not stop.is_set():
                try:
                    found = await self.sandbox.messages(chat_id, since, 2.0)
                except httpx.HTTPError:  # 404 until the group's first post; or a time-out
                    await asyncio.sleep(0.2)
                    continue
                now = time.perf_counter()
                for m in found:
                    since = max(since, m["message_id"])
                    if m["from_bot"] and m["reply_to_message_id"] is not None:
                        arrivals.setdefault((chat_id, m["reply_to_message_id"]), now)

        watchers = [asyncio.create_task(watch(c)) for c in chat_ids]
        self.cpu.start()
        tasks, wall = await paced(count, plan.rate, lambda k: self._post(messages[k]))
        await asyncio.gather(*tasks)
        stopped = time.perf_counter()
        posted = [m for m in messages if m.message_id is not None]
        chats = [str(c) for c in chat_ids]
        settled_at, snap = await wait_settled(self.view, chats, len(posted), plan.settle_limit)
        await asyncio.sleep(0.3)  # the watchers see the last warnings
        cpu = self.cpu.stop()
        stop.set()
        await asyncio.gather(*watchers)
        outcome = await self._outcome(posted, chats)
        warned = [
            arrivals[(m.chat_id, m.message_id)] - m.at_perf
            for m in posted
            if (m.chat_id, m.message_id) in arrivals and m.scam
        ]
        return {
            "messages": count,
            "groups": len(chat_ids),
            "seconds": wall,
            "achieved_rate": achieved_rate([m.accepted_perf for m in posted]),
            "send_failed": count - len(posted),
            "settled_after_s": None if settled_at is None else settled_at - stopped,
            "latency": latency_summary(warned),
            **outcome,
            "cpu_percent": cpu,
            "app_memory_mb": self.memory(),
            "store_at_end": dataclasses.asdict(snap),
        }

    async def _post(self, message: Posted) -> None:
        message.at = time.time()
        message.at_perf = time.perf_counter()
        try:
            message.message_id = await self.sandbox.send(
                group(message.chat_id), resident(message.user_id), message.text
            )
            message.accepted_perf = time.perf_counter()
        except SendFailed as exc:
            message.error = str(exc)

    async def _outcome(self, posted: list[Posted], chats: list[str]) -> dict:
        """Every message against the store and the sandbox: processed, warned, delivered."""
        inbox = {
            row.sender_id: row for row in await asyncio.to_thread(self.view.inbox_rows, chats)
        }
        outbox = {
            (row.chat_external_id, row.reply_to): row
            for row in await asyncio.to_thread(self.view.outbox_rows, chats)
            if row.purpose == "warning"
        }
        delivered: set[tuple[int, int]] = set()
        for chat in {m.chat_id for m in posted}:
            for m in await self.sandbox.messages(chat):
                if m["from_bot"] and m["reply_to_message_id"] is not None:
                    delivered.add((chat, m["reply_to_message_id"]))
        counts = dict.fromkeys(
            (
                "scam_posted",
                "ordinary_posted",
                "not_in_inbox",
                "not_done",
                "warnings_decided",
                "warnings_delivered",
                "warnings_missing",
                "scam_warned",
                "scam_quiet",
                "ordinary_warned",
            ),
            0,
        )
        to_warning: list[float] = []
        to_inbox: list[float] = []
        to_done: list[float] = []
        for m in posted:
            counts["scam_posted" if m.scam else "ordinary_posted"] += 1
            row = inbox.get(m.sender)
            if row is None:
                counts["not_in_inbox"] += 1
                continue
            to_inbox.append(row.received_at.timestamp() - m.at)
            if row.status != "done":
                counts["not_done"] += 1
                continue
            to_done.append(row.processed_at.timestamp() - m.at)
            decided = bool(row.replies)
            shown = (m.chat_id, m.message_id) in delivered
            counts["warnings_decided"] += decided
            counts["warnings_delivered"] += decided and shown
            counts["warnings_missing"] += decided and not shown
            if m.scam:
                counts["scam_warned" if shown else "scam_quiet"] += 1
            else:
                counts["ordinary_warned"] += shown
            sent = outbox.get((str(m.chat_id), m.message_id))
            if decided and sent is not None and sent.sent_at is not None:
                to_warning.append(sent.sent_at.timestamp() - m.at)
        return {
            **counts,
            "store_time_to_warning": latency_summary(to_warning),
            "store_time_to_inbox": latency_summary(to_inbox),
            "store_time_to_done": latency_summary(to_done),
        }

    async def ramp_step(self, index: int, rate: float) -> dict:
        plan = self.plan
        count = max(2, round(rate * plan.ramp_seconds))
        base = GROUPS - 100_000 * (index + 1)
        chat_ids = [base - g for g in range(plan.ramp_groups)]
        first_user = GROUP_USERS + 1_000_000 * (index + 1)
        messages = [
            Posted(chat_ids[k % len(chat_ids)], first_user + k, text, scam)
            for k, (text, scam) in enumerate(self.texts.mix(count, plan.scam_share))
        ]
        chats = [str(c) for c in chat_ids]
        self.cpu.start()
        tasks, wall = await paced(count, rate, lambda k: self._post(messages[k]))
        await asyncio.gather(*tasks)
        stopped = time.perf_counter()
        cpu = self.cpu.stop()
        posted = [m for m in messages if m.message_id is not None]
        unfetched = await self.sandbox.pending_updates()
        at_end = await asyncio.to_thread(self.view.snapshot, chats)
        settled_at, snap = await wait_settled(self.view, chats, len(posted), plan.settle_limit)
        settled = None if settled_at is None else settled_at - stopped
        outcome = await self._outcome(posted, chats)
        lost = outcome["not_in_inbox"] + outcome["not_done"]
        held = (
            len(posted) == count
            and lost == 0
            and outcome["warnings_missing"] == 0
            and settled is not None
            and settled <= plan.drain_limit
        )
        return {
            "rate": rate,
            "messages": count,
            "groups": len(chat_ids),
            "seconds": wall,
            "achieved_rate": achieved_rate([m.accepted_perf for m in posted]),
            "send_failed": count - len(posted),
            "backlog_at_end": len(posted) - at_end.done,
            # where it was: not fetched by the bot yet (Telegram would keep these), fetched but
            # not in the inbox (in the app's memory only), or in the inbox and not done
            "backlog_unfetched": unfetched,
            "backlog_in_memory": max(0, len(posted) - at_end.rows - unfetched),
            "backlog_in_inbox": at_end.rows - at_end.done,
            "drained_after_s": settled,
            "lost": lost,
            "held": held,
            **outcome,
            "cpu_percent": cpu,
            "app_memory_mb": self.memory(),
            "store_at_end": dataclasses.asdict(snap),
        }

    async def ramp(self) -> list[dict]:
        steps = []
        for index, rate in enumerate(self.plan.ramp):
            step = await self.ramp_step(index, rate)
            steps.append(step)
            print(
                f"  ramp {rate:g} msg/s: held={step['held']} backlog={step['backlog_at_end']} "
                f"drained={step['drained_after_s']} lost={step['lost']}",
                flush=True,
            )
            if not step["held"] and self.plan.stop_when_not_held:
                break
        return steps


# --- the whole Telegram part -----------------------------------------------------------------


async def run_async(
    settings: Settings,
    pool: Sequence[tuple[str, str]],
    plan: Plan,
    *,
    pids: dict[str, int],
    log_path: Path,
) -> dict:
    """The app on ``settings`` (its Rasa, action server and store already running)."""
    scam, ordinary = split_pool(pool)
    app_settings = dataclasses.replace(
        settings,
        telegram_bot_token="",
        telegram_mode="polling",
        web_host="127.0.0.1",
        web_port=_free_port(),
        staff_chat_id="",
    )
    result: dict[str, Any] = {"plan": dataclasses.asdict(plan), "load_before": os.getloadavg()}
    started = time.perf_counter()
    app = App(app_settings)
    sandbox = Sandbox(app.url)
    view = StoreView(settings.database_url)
    try:
        await app.wait_ready()
        result["start_s"] = time.perf_counter() - started
        result["memory_started_mb"] = proc_status(app.process.pid)
        bench = Bench(
            app_settings,
            sandbox,
            view,
            CpuMeter({"app": app.process.pid, **pids}),
            app,
            Texts(scam, ordinary, seed=23),
            plan,
        )
        result["warm_up"] = await bench.warm_up()
        result["memory_idle_mb"] = bench.memory()
        print("  private chats ...", flush=True)
        result["private"] = await bench.private_latency()
        print("  groups ...", flush=True)
        result["groups"] = await bench.group_latency()
        print("  group ramp ...", flush=True)
        result["ramp"] = await bench.ramp()
        result["memory_end_mb"] = bench.memory()
        result["memory_others_mb"] = {name: proc_status(pid) for name, pid in pids.items()}
        held = [s["rate"] for s in result["ramp"] if s["held"]]
        result["held_rate"] = max(held) if held else None
    finally:
        await sandbox.aclose()
        view.close()
        app.stop(keep_log=True)
        result["app_exit_status"] = app.process.returncode
        result["load_after"] = os.getloadavg()
        with contextlib.suppress(OSError):
            log_path.write_bytes(app.log_path.read_bytes())
            app.log_path.unlink()
    result["app_log"] = str(log_path)
    return result


def run(
    settings: Settings,
    pool: Sequence[tuple[str, str]],
    plan: Plan,
    *,
    pids: dict[str, int],
    log_path: Path,
    parse_reference: dict,
) -> dict:
    result = asyncio.run(run_async(settings, pool, plan, pids=pids, log_path=log_path))
    result["parse_reference"] = parse_reference
    return result


# --- the report ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f}%" for name, value in cpu.items())


def markdown(t: dict) -> list[str]:
    plan = t["plan"]
    p, g = t["private"], t["groups"]
    if t.get("separate_run"):
        where = (
            "run on its own (`--telegram-only`), on a Rasa server, action server and SQLite "
            "store of its own, with the parse figure below measured on that server"
        )
    else:
        where = "on the same Rasa server, action server and SQLite store as above"
    load = ", ".join(f"{x:.1f}" for x in t.get("load_before", ()))
    out = [
        "## Telegram front end, end to end (sandbox)",
        "",
        "`antifraud app` as a child process without a token (the sandbox Bot API, polled by the "
        f"bot), {where}. Residents post through `POST /sandbox/send` on a steady clock, open "
        "loop; test-set texts, each made distinct. Times run from posting until the bot's "
        f"message is in the chat. Load average before this part: {load}.",
        "",
        "| run | messages | rate (msg/s) | answered | no answer | p50 (ms) | p95 (ms) | "
        "p99 (ms) | max (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lat = p["latency"]
    out.append(
        f"| private chats, {p['users']} residents, half scam: first reply | {p['messages']} | "
        f"{_rate(p['achieved_rate'])} | {p['replied']} | {p['no_reply'] + p['send_failed']} | "
        f"{_ms(lat['p50_ms'])} | {_ms(lat['p95_ms'])} | {_ms(lat['p99_ms'])} | "
        f"{_ms(lat['max_ms'])} |"
    )
    lat = g["latency"]
    missing = g["warnings_missing"] + g["not_in_inbox"] + g["not_done"] + g["send_failed"]
    out.append(
        f"| {g['groups']} groups, half scam: warning | {g['messages']} | "
        f"{_rate(g['achieved_rate'])} | {g['warnings_delivered']} | {missing} | "
        f"{_ms(lat['p50_ms'])} | {_ms(lat['p95_ms'])} | {_ms(lat['p99_ms'])} | "
        f"{_ms(lat['max_ms'])} |"
    )
    out += [
        "",
        f"Private: {_ms(p['latency_scam']['p50_ms'])} ms p50 for scam texts, "
        f"{_ms(p['latency_ordinary']['p50_ms'])} ms for ordinary ones. Groups: of "
        f"{g['scam_posted']} scam messages {g['scam_warned']} were warned and "
        f"{g['scam_quiet']} checked and left alone (not clear enough for a group warning); "
        f"{g['ordinary_warned']} of {g['ordinary_posted']} ordinary messages got a warning. "
        f"No answer counts a message without a reply, a decided warning not shown, a message "
        "not processed and a post the sandbox refused. "
        f"CPU over the private run: {_cpu(p['cpu_percent'])}; over the group run: "
        f"{_cpu(g['cpu_percent'])} (% of one core; 2 cores in all).",
        "",
        f"### Group messages at increasing rates, {plan['ramp_seconds']:.0f} s each",
        "",
        f"{plan['ramp_groups']} groups, a distinct resident for each message, "
        f"{100 * plan['scam_share']:.0f}% scam texts. Processed: the message's inbox row "
        "reached `done`. Backlog: messages posted but not yet done when posting stopped. "
        f"Held: nothing lost, every decided warning shown, and the backlog gone within "
        f"{plan['drain_limit']:.0f} s.",
        "",
        "| rate (msg/s) | achieved | messages | processed | scam: warned / posted | "
        "backlog at end | drained after (s) | p95 to inbox (ms) | p95 to done (ms) | "
        "p95 to warning (ms) | CPU app / Rasa / actions | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in t["ramp"]:
        processed = s["messages"] - s["send_failed"] - s["lost"]
        cpu = s["cpu_percent"]
        drained = s["drained_after_s"]
        drain = _s(drained) if drained is not None else f"not in {plan['settle_limit']:.0f}"
        out.append(
            f"| {s['rate']:g} | {_rate(s['achieved_rate'])} | {s['messages']} | {processed} | "
            f"{s['scam_warned']} / {s['scam_posted']} | {s['backlog_at_end']} | "
            f"{drain} | "
            f"{_ms(s['store_time_to_inbox']['p95_ms'])} | "
            f"{_ms(s['store_time_to_done']['p95_ms'])} | "
            f"{_ms(s['store_time_to_warning']['p95_ms'])} | "
            f"{cpu.get('app', 0):.0f}% / {cpu.get('rasa', 0):.0f}% / {cpu.get('actions', 0):.0f}% "
            f"| {'yes' if s['held'] else 'no'} |"
        )
    ref = t["parse_reference"]
    held = t.get("held_rate")
    out += [""]
    # where a backlog of more than a second's messages waited when posting stopped
    behind = [s for s in t["ramp"] if not s["held"] or s["backlog_at_end"] > s["rate"]]
    for s in behind:
        out.append(
            f"Backlog at {s['rate']:g} msg/s when posting stopped: not fetched by the bot yet "
            f"{s['backlog_unfetched']}; fetched but not yet in the inbox (only in the app's "
            f"memory, python-telegram-bot's update queue) {s['backlog_in_memory']}; in the "
            f"inbox, not done {s['backlog_in_inbox']}."
        )
    if behind:
        out.append("")
    if held is not None:
        tried = max(step["rate"] for step in t["ramp"])
        limit = " (the highest tried: the limit is above it)" if held == tried else ""
        out.append(
            f"Highest rate held: **{held:g} group messages/s**{limit}, against "
            f"{ref['throughput']:.1f} parses/s for plain Rasa `/model/parse` with "
            f"{ref.get('concurrency', 8)} in flight on the same server in the same run "
            f"({100 * held / ref['throughput']:.0f}% of the parse capacity)."
        )
    else:
        out.append(
            f"No rate was held; plain Rasa `/model/parse` did {ref['throughput']:.1f} parses/s "
            "on the same server in the same run."
        )
    mem = t
    out += [
        "",
        f"App memory (resident set): {mem['memory_idle_mb'].get('VmRSS', 0):.0f} MB after the "
        f"warm-up, {mem['memory_end_mb'].get('VmRSS', 0):.0f} MB at the end, peak "
        f"{mem['memory_end_mb'].get('VmHWM', 0):.0f} MB (the sandbox keeps every chat's "
        f"messages in the same process). Time to warning in the ramp is the outbox's `sent_at` "
        "against the time posted (no observer in the loaded app); in the group run above it is "
        f"seen by long polls, and the store's figure there is "
        f"{_ms(g['store_time_to_warning']['p95_ms'])} ms p95 against "
        f"{_ms(g['latency']['p95_ms'])} ms seen.",
        "",
    ]
    return out
