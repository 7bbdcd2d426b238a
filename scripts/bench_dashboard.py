"""The staff dashboard as reports pile up, for ``make bench`` (``scripts/bench.py`` runs it).

The question: does the dashboard stay fast as reports pile up, and what does it cost over the
plain query? For each database (a SQLite file and, when it answers, PostgreSQL) a store is
filled to a quarter, half and all of ``Plan.reports`` reports, and at each size the pages are
timed through the real app (``Dashboard.routes()`` in a Starlette app, served by uvicorn on a
free port in a thread of this process) by httpx clients logged in through the login form, one
request at a time: the queue (default filter, and a type + grid filter) as staff and as a grid
leader, a report page (with its similar reports) and the trends page. The same data is read
through the plain store calls in the same run (``store.list_reports(limit=50)``, the old
unfiltered and unscoped list, and the ``review_queue`` and trend calls the pages make), so the
page's own cost (session check, template, HTTP) and the filtering's are apart.

Filling: the first ``Plan.real_reports`` are filed as the bot files them (``store.add_report``
and ``store.transition``); the rest are written with SQLAlchemy core in chunks (reports, their
status events, LSH bands, indicators and links), so 20,000 take seconds. The texts are the
labelled test set's (``tests/nlu``), analysed by the product's analyzer (red flags, masked
indicators); a scam's popularity follows Zipf's law and a copy may carry another phone number,
as scam waves do. Statuses follow age (most old reports reviewed, most of today's open),
sources, risks and places are mixed over a community's grids, their buildings and registered
groups, and ``created_at`` spreads over 12 weeks (fewer at night). What each page shows (the
queue's count, the heatmap's total, the similar reports) is checked against a tally kept while
filling.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import resource
import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from bot.dashboard import passwords
from bot.dashboard.web import SESSION_COOKIE, Dashboard
from bot.nlp.analysis import Analyzer, get_analyzer
from bot.nlp.evaluate import load_labelled
from bot.nlp.rasa_server import _free_port
from bot.nlp.taxonomy import NOT_SCAM, Taxonomy, load_taxonomy
from bot.settings import PROJECT_ROOT, Settings
from bot.store import workflow
from bot.store.db import upgrade
from bot.store.models import (
    Indicator,
    Report,
    ReportEvent,
    ReportIndicator,
    ReportMinhashBand,
    Resident,
)
from bot.store.repo import NewReport, Store, indicator_hash
from bot.store.review import OPEN, QueueFilter
from bot.store.similarity import text_bands, text_hash
from bot.store.types import utcnow

STAFF = "staff"
LEADER = "lead1"  # leads the first grid (and its buildings)
SOURCES = (("check", 0.5), ("group_auto", 0.3), ("report_form", 0.15), ("urgent", 0.05))
VARIANTS = (0.4, 0.3, 0.2, 0.1)  # the text as in the test set, then with another phone number
NOT_SCAM_SHARE = 0.1  # reports of ordinary messages the model took for a scam
RESIDENTS_PER_REPORT = 1 / 3
CHUNK = 2000  # reports written per transaction
WARM_UP = 3
_QUEUE_TOTAL = re.compile(r"共 ([0-9]+) 条")
_QUEUE_ROW = '<td><a href="/reports/'
_HEATMAP_TOTAL = re.compile(r"共 ([0-9]+) 起")
_SIMILAR_ROW = '<li><a href="/reports/'
_HEADING = re.compile(r"<h1>报告 #([0-9]+)")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

#: The pages timed: name -> (who asks, what the report calls it).
PAGES = {
    "queue_staff": (STAFF, "queue, default filter (open, risk first)"),
    "queue_leader": (LEADER, "queue, default filter"),
    "queue_filtered_staff": (STAFF, "queue, the wave's type + grid 1"),
    "queue_filtered_leader": (LEADER, "queue, the wave's type + grid 1"),
    "report_popular": (STAFF, "report page, the most copied text"),
    "report_typical": (STAFF, "report page, a report drawn at random"),
    "trends_staff": (STAFF, "trends, `source=reports`"),
    "trends_leader": (LEADER, "trends, `source=reports`"),
}


class DashboardBenchError(RuntimeError):
    """The bench could not run (a server that did not start, a login or a page that failed)."""


@dataclass(frozen=True)
class Plan:
    reports: int = 20_000
    requests: int = 200  # per page at the full size; a quarter of it at the smaller sizes
    real_reports: int = 300  # filed through store.add_report, the rest bulk-inserted
    steps: tuple[float, ...] = (0.25, 0.5, 1.0)
    grids: int = 10
    buildings: int = 3  # per grid
    weeks: int = 12
    seed: int = 5

    def __post_init__(self) -> None:
        if self.reports < 20:
            raise ValueError("reports must be at least 20")
        if self.requests < 1 or self.real_reports < 0:
            raise ValueError("requests must be at least 1 and real_reports not negative")
        if not self.steps or not all(0 < s <= 1 for s in self.steps) or max(self.steps) != 1:
            raise ValueError("steps are shares of the reports, from above 0 to 1, ending at 1")
        if self.grids < 1 or self.buildings < 1 or self.weeks < 1:
            raise ValueError("grids, buildings and weeks must be at least 1")

    @classmethod
    def tiny(cls, reports: int = 300, requests: int = 10) -> Plan:
        return cls(
            reports, requests, real_reports=40, steps=(0.5, 1.0), grids=3, buildings=2, weeks=1
        )

    def sizes(self) -> list[int]:
        return sorted({max(1, round(self.reports * s)) for s in self.steps} | {self.reports})

    def requests_at(self, size: int) -> int:
        return self.requests if size == self.reports else max(5, self.requests // 4)


# --- the texts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A text as the bot files it, analysed once however often it is drawn."""

    key: tuple[int, int]  # (the test-set text, the variant)
    label: str  # the test set's type: what staff's verdict finds
    text: str = field(repr=False)
    masked: str = field(repr=False)
    normalized: str = field(repr=False)
    text_hash: str
    red_flags: list[dict[str, Any]] = field(repr=False)
    indicators: list[tuple[str, str, str]] = field(repr=False)
    bands: list[int] = field(repr=False)


class Messages:
    """The labelled test texts: ordinary ones drawn evenly, scams by Zipf popularity."""

    def __init__(self, pool: list[tuple[str, str]], analyzer: Analyzer, seed: int) -> None:
        self.pool = pool
        self.analyzer = analyzer
        self.scams = [i for i, (_, label) in enumerate(pool) if label != NOT_SCAM]
        self.ordinary = [i for i, (_, label) in enumerate(pool) if label == NOT_SCAM]
        if not self.scams or not self.ordinary:
            raise DashboardBenchError("the test set needs both scam and ordinary texts")
        self.codes = sorted({pool[i][1] for i in self.scams})
        random.Random(seed).shuffle(self.scams)  # which scam is the big wave: not file order
        self.weights = [1 / (rank + 1) for rank in range(len(self.scams))]
        self.cache: dict[tuple[int, int], Message] = {}

    @property
    def wave_type(self) -> str:
        """The type of the most copied scam: what staff would filter the queue by."""
        return self.pool[self.scams[0]][1]

    def draw(self, rng: random.Random) -> Message:
        if rng.random() < NOT_SCAM_SHARE:
            base = rng.choice(self.ordinary)
        else:
            base = rng.choices(self.scams, self.weights)[0]
        variant = rng.choices(range(len(VARIANTS)), VARIANTS)[0]
        return self.get((base, variant))

    def get(self, key: tuple[int, int]) -> Message:
        if key not in self.cache:
            base, variant = key
            text, label = self.pool[base]
            if variant:
                n = base * len(VARIANTS) + variant
                text = f"{text}，有事联系1{3 + n % 7}{n * 7919 % 10**9:09d}"
            found = self.analyzer.analyse(text)
            self.cache[key] = Message(
                key=key,
                label=label,
                text=text,
                masked=found.masked_text(),
                normalized=found.normalized,
                text_hash=text_hash(found.normalized),
                red_flags=found.red_flags_dict(),
                indicators=[(i.kind, i.value, i.masked) for i in found.indicators],
                bands=text_bands(found.normalized),
            )
        return self.cache[key]


# --- the grid, the accounts and the groups ---------------------------------------------------


@dataclass
class World:
    grids: list[int]
    buildings: dict[int, list[int]]  # grid -> its buildings
    staff_id: int
    password: str = field(repr=False)
    chats: list[tuple[int, str, int]]  # (chat id, external id, area id)
    residents: list[tuple[int, str, int | None]]  # (resident id, sender id, area id)

    def subtree(self, grid: int) -> frozenset[int]:
        return frozenset({grid, *self.buildings[grid]})

    @property
    def leader_scope(self) -> frozenset[int]:
        return self.subtree(self.grids[0])


def build_world(store: Store, plan: Plan, rng: random.Random) -> World:
    """A community with its grids and buildings, staff and a leader per grid, registered
    groups, and residents (most placed in the grid, some not)."""
    community = store.add_area("community", "东湖社区").id
    grids, buildings, leaders = [], {}, []
    for g in range(plan.grids):
        grid = store.add_area("grid", f"{g + 1}网格", community).id
        grids.append(grid)
        buildings[grid] = [
            store.add_area("building", f"{b + 1}幢", grid).id for b in range(plan.buildings)
        ]
        leader = store.add_user(f"lead{g + 1}", "grid_leader", f"第{g + 1}网格长").id
        store.add_leader(grid, leader)
        leaders.append(leader)
    staff = store.add_user(STAFF, "staff", "张干事").id
    password = secrets.token_urlsafe(18)
    hashed = passwords.hash_password(password)
    for user_id in (staff, leaders[0]):
        store.set_password_hash(user_id, hashed, "cli")
    chats = []
    places = [(grid, leaders[i]) for i, grid in enumerate(grids) for _ in range(2)]
    places += [(b, leaders[i]) for i, grid in enumerate(grids) for b in buildings[grid]]
    for n, (area, leader) in enumerate(places):
        external = str(-1_004_000_000_000 - n)
        tags = ["elderly"] if n % 2 else ["students", "new_residents"]
        view = store.register_group("telegram", external, area, tags, leader, f"{n + 1}号网格群")
        chats.append((view.id, external, area))
    leaves = [a for grid in grids for a in (grid, *buildings[grid])]
    count = max(20, round(plan.reports * RESIDENTS_PER_REPORT))
    people = []
    for i in range(count):
        user = 900_000_000 + i
        people.append((f"tg:{user}:{user}", rng.choice(leaves) if rng.random() < 0.7 else None))
    now = utcnow()

    def work(session: Session) -> list[int]:
        rows = [
            {
                "sender_id": sender,
                "channel": "telegram",
                "subscribed": False,
                "area_id": area,
                "created_at": now,
                "last_seen_at": now,
            }
            for sender, area in people
        ]
        stmt = sa.insert(Resident.__table__).returning(
            Resident.__table__.c.id, sort_by_parameter_order=True
        )
        return list(session.execute(stmt, rows).scalars())

    ids = store.run_in(work, write=True)
    residents = [(rid, s, a) for rid, (s, a) in zip(ids, people, strict=True)]
    return World(grids, buildings, staff, password, chats, residents)


# --- the reports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """One report to file: its text and what the bot, and later staff, made of it."""

    message: Message
    source: str
    scam_type: str
    confidence: float
    risk: str
    status: str
    verdict: str | None
    created_at: datetime
    reviewed_at: datetime | None
    resident: tuple[int, str, int | None]
    chat: tuple[int, str, int] | None
    assigned_to: int | None

    @property
    def area_id(self) -> int | None:
        return self.chat[2] if self.chat is not None else self.resident[2]

    @property
    def places(self) -> frozenset[int]:
        """Where a grid leader sees it: its group's area and its resident's."""
        found = {self.resident[2], self.chat[2] if self.chat is not None else None}
        return frozenset(a for a in found if a is not None)

    @property
    def shown_type(self) -> str:
        if self.status in workflow.REVIEWED and self.verdict is not None:
            return self.verdict
        return self.scam_type


@dataclass(frozen=True)
class Filed:
    """The tally of a report filed: what the pages should count it as."""

    id: int
    status: str
    shown_type: str
    area_id: int | None
    key: tuple[int, int]
    places: frozenset[int] = frozenset()  # the queue shows it to leaders of any of these

    def visible(self, scope: frozenset[int] | None) -> bool:
        return scope is None or bool(self.places & scope)


def _open_share(age: timedelta) -> float:
    if age < timedelta(days=1):
        return 0.75
    return 0.35 if age < timedelta(days=7) else 0.06


def draft(
    rng: random.Random,
    world: World,
    messages: Messages,
    now: datetime,
    weeks: int,
) -> Draft:
    message = messages.draw(rng)
    source = rng.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0]
    ordinary = message.label == NOT_SCAM
    if ordinary:  # the model took it for a scam, with little confidence
        scam_type, confidence = rng.choice(messages.codes), rng.uniform(0.5, 0.75)
    else:
        scam_type = message.label if rng.random() < 0.9 else rng.choice(messages.codes)
        confidence = rng.uniform(0.6, 0.99)
    if source == "urgent" or confidence >= 0.85:
        risk = "high"
    else:
        risk = "medium" if confidence >= 0.7 else "low"
    while True:  # fewer reports at night (Asia/Shanghai is UTC+8)
        created = now - timedelta(seconds=rng.uniform(0, weeks * 7 * 86400))
        if (created.hour + 8) % 24 >= 7 or rng.random() < 0.2:
            break
    age = now - created
    reviewed_at = None
    verdict = None
    assigned_to = None
    if rng.random() < _open_share(age):
        status = rng.choices(("new", "assigned", "in_review"), (0.6, 0.25, 0.15))[0]
        assigned_to = world.staff_id if status == "assigned" else None
    else:
        dismissed = ordinary or rng.random() < 0.08
        verdict = NOT_SCAM if dismissed else message.label
        status = "dismissed" if dismissed else "confirmed"
        if source != "group_auto" and rng.random() < 0.7:
            status = "answered"  # the resident was told
        reviewed_at = created + min(age, timedelta(minutes=rng.uniform(10, 2880)))
    chat = rng.choice(world.chats) if source == "group_auto" else None
    return Draft(
        message=message,
        source=source,
        scam_type=scam_type,
        confidence=round(confidence, 3),
        risk=risk,
        status=status,
        verdict=verdict,
        created_at=created,
        reviewed_at=reviewed_at,
        resident=rng.choice(world.residents),
        chat=chat,
        assigned_to=assigned_to,
    )


def _filed(report_id: int, d: Draft) -> Filed:
    return Filed(report_id, d.status, d.shown_type, d.area_id, d.message.key, d.places)


def file_real(store: Store, world: World, d: Draft) -> Filed:
    """A report as the bot files it and staff then move it, through the store's own calls."""
    m = d.message
    report = store.add_report(
        NewReport(
            sender_id=d.resident[1],
            channel="telegram",
            text=m.text,
            text_masked=m.masked,
            normalized=m.normalized,
            source=d.source,
            scam_type=d.scam_type,
            confidence=d.confidence,
            risk=d.risk,
            intent=f"scam_{d.scam_type}",
            red_flags=m.red_flags,
            indicators=m.indicators,
            chat_external_id=d.chat[1] if d.chat is not None else None,
            money_lost=True if d.source == "urgent" else None,
        )
    )
    actor = f"user:{world.staff_id}"
    if d.status == "assigned":
        store.transition(report.id, "assigned", actor, assigned_to=world.staff_id)
    elif d.status == "in_review":
        store.transition(report.id, "in_review", actor)
    elif d.verdict is not None:
        verdict = "dismissed" if d.verdict == NOT_SCAM else "confirmed"
        code = None if d.verdict == NOT_SCAM else d.verdict
        store.transition(report.id, verdict, actor, verdict_scam_type=code)
        if d.status == "answered":
            store.transition(report.id, "answered", "bot")
    return _filed(report.id, d)


def _events(report_id: int, d: Draft, staff: int) -> list[dict[str, Any]]:
    def event(from_status: str | None, to: str, actor: str, at: datetime) -> dict[str, Any]:
        return {
            "report_id": report_id,
            "from_status": from_status,
            "to_status": to,
            "actor": actor,
            "note": None,
            "at": at,
        }

    events = [event(None, "new", "bot", d.created_at)]
    if d.status in ("assigned", "in_review"):
        events.append(event("new", d.status, f"user:{staff}", d.created_at))
    elif d.reviewed_at is not None:
        verdict = "dismissed" if d.verdict == NOT_SCAM else "confirmed"
        events.append(event("new", verdict, f"user:{staff}", d.reviewed_at))
        if d.status == "answered":
            events.append(event(verdict, "answered", "bot", d.reviewed_at))
    return events


def _upsert(store: Store) -> Any:
    return postgresql.insert if store.dialect == "postgresql" else sqlite.insert


def file_bulk(store: Store, world: World, drafts: list[Draft]) -> list[Filed]:
    """Write many reports in one transaction with SQLAlchemy core: the rows ``add_report`` and
    ``transition`` would leave (report, events, LSH bands, indicators and their links)."""

    def report_row(d: Draft) -> dict[str, Any]:
        m = d.message
        reviewed = d.reviewed_at is not None
        return {
            "resident_id": d.resident[0],
            "chat_id": d.chat[0] if d.chat is not None else None,
            "inbound_message_id": None,
            "source": d.source,
            "text": m.text,
            "text_masked": m.masked,
            "normalized": m.normalized,
            "text_hash": m.text_hash,
            "scam_type": d.scam_type,
            "confidence": d.confidence,
            "risk": d.risk,
            "intent": f"scam_{d.scam_type}",
            "red_flags": m.red_flags,
            "details": {},
            "money_lost": True if d.source == "urgent" else None,
            "amount": None,
            "happened_at": None,
            "status": d.status,
            "assigned_to": d.assigned_to,
            "verdict_scam_type": d.verdict,
            "verdict_note": None,
            "reviewed_by": world.staff_id if reviewed else None,
            "reviewed_at": d.reviewed_at,
            "answered_at": d.reviewed_at if d.status == "answered" else None,
            "created_at": d.created_at,
            "updated_at": d.reviewed_at or d.created_at,
        }

    def work(session: Session) -> list[int]:
        reports = Report.__table__
        stmt = sa.insert(reports).returning(reports.c.id, sort_by_parameter_order=True)
        ids = list(session.execute(stmt, [report_row(d) for d in drafts]).scalars())
        events, bands, seen = [], [], {}
        links: list[tuple[int, str]] = []
        for report_id, d in zip(ids, drafts, strict=True):
            events += _events(report_id, d, world.staff_id)
            bands += [
                {"report_id": report_id, "band": band, "bucket": bucket}
                for band, bucket in enumerate(d.message.bands)
            ]
            hashes = set()
            for kind, value, masked in d.message.indicators:
                value_hash = indicator_hash(kind, value)
                if value_hash in hashes:
                    continue
                hashes.add(value_hash)
                links.append((report_id, value_hash))
                row = seen.setdefault(
                    value_hash,
                    {
                        "kind": kind,
                        "value": value,
                        "value_hash": value_hash,
                        "masked": masked,
                        "status": "suspected",
                        "seen_count": 0,
                        "first_seen_at": d.created_at,
                        "last_seen_at": d.created_at,
                    },
                )
                row["seen_count"] += 1
                row["first_seen_at"] = min(row["first_seen_at"], d.created_at)
                row["last_seen_at"] = max(row["last_seen_at"], d.created_at)
        session.execute(sa.insert(ReportEvent.__table__), events)
        if bands:
            session.execute(sa.insert(ReportMinhashBand.__table__), bands)
        if seen:
            table = Indicator.__table__
            upsert = _upsert(store)(table)
            latest = sa.func.max if store.dialect == "sqlite" else sa.func.greatest
            upsert = upsert.on_conflict_do_update(
                index_elements=["value_hash"],
                set_={
                    "seen_count": table.c.seen_count + upsert.excluded.seen_count,
                    "last_seen_at": latest(table.c.last_seen_at, upsert.excluded.last_seen_at),
                },
            )
            session.execute(upsert, [seen[h] for h in sorted(seen)])
            ids_of: dict[str, int] = {}
            wanted = sorted(seen)
            for start in range(0, len(wanted), 500):
                query = sa.select(table.c.value_hash, table.c.id).where(
                    table.c.value_hash.in_(wanted[start : start + 500])
                )
                ids_of.update(session.execute(query).tuples().all())
            session.execute(
                sa.insert(ReportIndicator.__table__),
                [{"report_id": r, "indicator_id": ids_of[h]} for r, h in links],
            )
        return ids

    ids = store.run_in(work, write=True)
    return [_filed(report_id, d) for report_id, d in zip(ids, drafts, strict=True)]


def fill(bench: Bench, messages: Messages, rng: random.Random, now: datetime, upto: int) -> None:
    """File reports until there are ``upto``: the first through the store's calls, the rest
    in bulk. Their times are drawn back from ``now``, one instant for every database, so each
    gets the same reports. On PostgreSQL the planner's statistics are then refreshed, as
    autovacuum would."""
    store, world, plan, filed = bench.store, bench.world, bench.plan, bench.filed
    while len(filed) < min(upto, plan.real_reports):
        filed.append(file_real(store, world, draft(rng, world, messages, now, plan.weeks)))
    while len(filed) < upto:
        n = min(CHUNK, upto - len(filed))
        drafts = [draft(rng, world, messages, now, plan.weeks) for _ in range(n)]
        filed.extend(file_bulk(store, world, drafts))
    if store.dialect == "postgresql":
        with store.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


# --- the tally: what the pages should show ---------------------------------------------------


def open_count(filed: list[Filed], scope: frozenset[int] | None) -> int:
    return sum(f.status in OPEN and f.visible(scope) for f in filed)


def filtered_count(
    filed: list[Filed], scope: frozenset[int] | None, scam_type: str, area: frozenset[int]
) -> int:
    return sum(
        f.status in OPEN and f.shown_type == scam_type and f.area_id in area and f.visible(scope)
        for f in filed
    )


def heatmap_count(filed: list[Filed], scope: frozenset[int] | None) -> int:
    """Reports the heatmap counts: not dismissed, not judged ordinary."""
    return sum(
        f.status != "dismissed"
        and f.shown_type != NOT_SCAM
        and (scope is None or f.area_id in scope)
        for f in filed
    )


def picks(filed: list[Filed], rng: random.Random) -> tuple[Filed, Filed]:
    """The report page's two reports: one of the most copied text, and one drawn at random."""
    copies = Counter(f.key for f in filed)
    top = max(copies, key=lambda k: (copies[k], k))
    popular = max((f for f in filed if f.key == top), key=lambda f: f.id)
    return popular, rng.choice(filed)


def queue_shown(html: str) -> list[int | None]:
    """The queue page's "共 N 条" and how many rows it lists."""
    found = _QUEUE_TOTAL.search(html)
    return [int(found.group(1)) if found else None, html.count(_QUEUE_ROW)]


def heading_id(html: str) -> int | None:
    """The report page's number, from its heading."""
    found = _HEADING.search(html)
    return int(found.group(1)) if found else None


def heatmap_shown(html: str) -> int | None:
    found = _HEATMAP_TOTAL.search(html)
    return int(found.group(1)) if found else None


# --- serving and timing ------------------------------------------------------------------------


class Server:
    """The dashboard's routes in a Starlette app, served by uvicorn in a thread of its own."""

    def __init__(self, dash: Dashboard) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            Starlette(routes=dash.routes()),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="none",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise DashboardBenchError(f"the dashboard did not start on {self.url}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def login(url: str, username: str, password: str) -> httpx.Client:
    """A client signed in through the login form, its CSRF token and cookies, as a browser."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=120)
    page = client.get("/login")
    token = _CSRF.search(page.text)
    if page.status_code != 200 or token is None:
        client.close()
        raise DashboardBenchError(f"the login page answered {page.status_code}")
    form = {"username": username, "password": password, "csrf_token": token.group(1)}
    answer = client.post("/login", data=form)
    if answer.status_code != 303 or SESSION_COOKIE not in client.cookies:
        client.close()
        raise DashboardBenchError(f"logging in as {username} answered {answer.status_code}")
    return client


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies: list[float]) -> dict[str, Any]:
    return {
        "n": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * percentile(latencies, 0.95),
    }


def time_page(client: httpx.Client, path: str, n: int) -> tuple[dict[str, Any], str]:
    """``n`` GETs one after another (after a short warm-up); the figures and the first page."""
    first = ""
    latencies = []
    for i in range(WARM_UP + n):
        start = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise DashboardBenchError(f"GET {path} answered {response.status_code}")
        if i == 0:
            first = response.text
        if i >= WARM_UP:
            latencies.append(elapsed)
    return {**summary(latencies), "kb": len(first.encode()) / 1024}, first


def time_call(call: Callable[[], object], n: int) -> dict[str, Any]:
    latencies = []
    for i in range(WARM_UP + n):
        start = time.perf_counter()
        call()
        if i >= WARM_UP:
            latencies.append(time.perf_counter() - start)
    return summary(latencies)


def rss_mb() -> float:
    """This process's resident memory now (``VmRSS``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- one database ------------------------------------------------------------------------------


@dataclass
class Bench:
    """One database's store, app and signed-in clients, and the tally of what was filed."""

    plan: Plan
    store: Store
    world: World
    clients: dict[str, httpx.Client]
    scope: frozenset[int]  # the leader's, as the store's session gives it
    wave_type: str  # the scam type the filtered queue asks for
    filed: list[Filed] = field(default_factory=list)

    def paths(self, popular: Filed, typical: Filed) -> dict[str, str]:
        filtered = f"/reports?type={self.wave_type}&area={self.world.grids[0]}"
        return {
            "queue_staff": "/reports",
            "queue_leader": "/reports",
            "queue_filtered_staff": filtered,
            "queue_filtered_leader": filtered,
            "report_popular": f"/reports/{popular.id}",
            "report_typical": f"/reports/{typical.id}",
            "trends_staff": "/trends?source=reports",
            "trends_leader": "/trends?source=reports",
        }

    def store_calls(self, popular: Filed, typical: Filed) -> dict[str, Callable[[], object]]:
        """The plain reads beside each page: what its handler asks the store for."""
        store, scope = self.store, self.scope
        default = QueueFilter(statuses=OPEN)
        filtered = replace(default, scam_type=self.wave_type, area_id=self.world.grids[0])

        def report(report_id: int) -> Callable[[], object]:
            return lambda: (store.get_report(report_id), store.similar_reports(report_id, None))

        def trends(where: frozenset[int] | None) -> Callable[[], object]:
            def calls() -> None:
                store.trend_types("reports", where)
                store.heatmap("reports", None, where)
                store.reports_per_week(where, 12)
                store.reports_per_area(where)
                store.deliveries_per_day(where, 30)

            return calls

        return {
            "list_reports": lambda: store.list_reports(limit=50),
            "queue_staff": lambda: store.review_queue(default, None),
            "queue_leader": lambda: store.review_queue(default, scope),
            "queue_filtered_staff": lambda: store.review_queue(filtered, None),
            "queue_filtered_leader": lambda: store.review_queue(filtered, scope),
            "report_popular": report(popular.id),
            "report_typical": report(typical.id),
            "trends_staff": trends(None),
            "trends_leader": trends(scope),
        }

    def checks(
        self, shown: dict[str, str], popular: Filed, typical: Filed
    ) -> dict[str, dict[str, Any]]:
        """What the first answer of each page showed against the tally kept while filling."""
        filed, scope, grid = self.filed, self.scope, self.world.leader_scope
        expected: dict[str, Any] = {}
        for who, where in (("staff", None), ("leader", scope)):
            total = open_count(filed, where)
            expected[f"queue_{who}"] = [total, min(50, total)]
            total = filtered_count(filed, where, self.wave_type, grid)
            expected[f"queue_filtered_{who}"] = [total, min(50, total)]
            expected[f"trends_{who}"] = heatmap_count(filed, where)
        out = {}
        for name, value in expected.items():
            got = (
                queue_shown(shown[name])
                if name.startswith("queue")
                else heatmap_shown(shown[name])
            )
            out[name] = {"expected": value, "shown": got, "ok": got == value}
        # Similar reports: the exact copies first (up to 5), then near ones (which the LSH may
        # or may not find), 5 at most.
        copies = sum(f.key == popular.key for f in filed) - 1
        html = shown["report_popular"]
        got = {"id": heading_id(html), "exact": html.count("内容相同")}
        want = {"id": popular.id, "exact": min(5, copies)}
        rows = html.count(_SIMILAR_ROW)
        out["report_popular"] = {
            "expected": {**want, "rows": [min(5, copies), 5]},
            "shown": {**got, "rows": rows},
            "copies": copies,
            "ok": got == want and min(5, copies) <= rows <= 5,
        }
        got_id = heading_id(shown["report_typical"])
        out["report_typical"] = {
            "expected": typical.id,
            "shown": got_id,
            "ok": got_id == typical.id,
        }
        return out

    def step(self, size: int, fill_s: float, rng: random.Random) -> dict[str, Any]:
        """Every page and its store calls at this size, timed; what the pages showed, checked."""
        n = self.plan.requests_at(size)
        calls_n = max(5, n // 4)  # enough for a median; the slow ones cost as much as a page
        popular, typical = picks(self.filed, rng)
        load = os.getloadavg()[0]
        pages, shown = {}, {}
        for name, path in self.paths(popular, typical).items():
            pages[name], shown[name] = time_page(self.clients[PAGES[name][0]], path, n)
        calls = self.store_calls(popular, typical)
        checks = self.checks(shown, popular, typical)
        return {
            "reports": size,
            "fill_s": fill_s,
            "load": load,
            "requests": n,
            "calls": calls_n,
            "pages": pages,
            "store": {name: time_call(call, calls_n) for name, call in calls.items()},
            "checks": checks,
            "ok": all(c["ok"] for c in checks.values()),
            "popular_copies": checks["report_popular"]["copies"],
            "rss_mb": rss_mb(),
        }


@contextlib.contextmanager
def bench_on(
    plan: Plan, url: str, settings: Settings, taxonomy: Taxonomy, wave_type: str
) -> Iterator[Bench]:
    """A migrated, empty store at ``url`` with the grid and accounts, the app serving it and
    the two users signed in; everything stopped at the end."""
    upgrade(url)
    store = Store(url, scam_codes=taxonomy.scam_codes)
    clients: dict[str, httpx.Client] = {}
    try:
        world = build_world(store, plan, random.Random(plan.seed))
        dash = Dashboard(store, taxonomy, replace(settings, database_url=url))
        with Server(dash) as server:
            try:
                for user in (STAFF, LEADER):
                    clients[user] = login(server.url, user, world.password)
                me = store.signed_in(clients[LEADER].cookies[SESSION_COOKIE])
                if me is None or me.area_ids != world.leader_scope:
                    raise DashboardBenchError("the leader's session does not hold their grid")
                yield Bench(plan, store, world, clients, me.area_ids, wave_type)
            finally:
                for client in clients.values():
                    client.close()
    finally:
        store.close()


def run_database(
    plan: Plan,
    url: str,
    settings: Settings,
    taxonomy: Taxonomy,
    messages: Messages,
    now: datetime,
) -> dict[str, Any]:
    rng = random.Random(plan.seed + 1)
    started = time.perf_counter()
    with bench_on(plan, url, settings, taxonomy, messages.wave_type) as bench:
        steps = []
        for size in plan.sizes():
            t0 = time.perf_counter()
            fill(bench, messages, rng, now, size)
            steps.append(bench.step(size, time.perf_counter() - t0, rng))
            print(f"dashboard: {size} reports measured", flush=True)
        return {
            "steps": steps,
            "statuses": dict(sorted(Counter(f.status for f in bench.filed).items())),
            "groups": len(bench.world.chats),
            "residents": len(bench.world.residents),
            "distinct_texts": len({f.key for f in bench.filed}),
            "wall_s": time.perf_counter() - started,
            "rss_mb": rss_mb(),
            "peak_rss_mb": peak_rss_mb(),
            "ok": all(s["ok"] for s in steps),
        }


def run(plan: Plan, databases: dict[str, str]) -> dict[str, Any]:
    """The bench on each database (name -> URL of an empty or new database), in order."""
    if not databases:
        raise DashboardBenchError("no database to run on")
    settings = Settings()
    taxonomy = load_taxonomy(settings.taxonomy_path)
    pool = load_labelled(sorted((PROJECT_ROOT / "tests/nlu").glob("*.yml")), taxonomy)
    load = list(os.getloadavg())
    analyzer = get_analyzer(settings.taxonomy_path, settings.lookups_dir)
    messages = Messages(pool, analyzer, plan.seed)
    now = utcnow()
    results = {
        name: run_database(plan, url, settings, taxonomy, messages, now)
        for name, url in databases.items()
    }
    return {
        "plan": asdict(plan),
        "load_before": load,
        "wave_type": messages.wave_type,
        "databases": results,
        "ok": all(r["ok"] for r in results.values()),
    }


def drop_postgres(url: str) -> None:
    """Drop a database ``scripts/bench.py`` made for this bench, so none is left behind."""
    import psycopg

    target = sa.make_url(url)
    server = target.set(drivername="postgresql", database="postgres")
    libpq = server.render_as_string(hide_password=False)
    with contextlib.suppress(psycopg.Error), psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


# --- the report ----------------------------------------------------------------------------------


def problems(d: dict[str, Any]) -> list[str]:
    issues = []
    for name, result in d["databases"].items():
        for step in result["steps"]:
            for page, check in step["checks"].items():
                if not check["ok"]:
                    issues.append(
                        f"{name}, {step['reports']} reports, {page}: showed {check['shown']}, "
                        f"expected {check['expected']}"
                    )
    return issues


def _who(page: str) -> str:
    return "grid leader" if PAGES[page][0] == LEADER else "staff"


def markdown(d: dict[str, Any]) -> list[str]:
    plan = d["plan"]
    names = list(d["databases"])
    first = d["databases"][names[0]]
    full = first["steps"][-1]
    load = ", ".join(f"{x:.1f}" for x in d.get("load_before", ()))
    statuses = ", ".join(f"{k} {v:,}" for k, v in first["statuses"].items())
    alone = "; run on its own (`--dashboard-only`)" if d.get("separate_run") else ""
    out = [
        f"## Staff dashboard: {plan['reports']:,} reports, the pages against the plain store "
        "calls",
        "",
        "The real app (`Dashboard.routes()` in Starlette, uvicorn on a free port in a thread "
        "of the bench's process), httpx clients logged in through the login form, one request "
        f"at a time: {plan['requests']} per page at the full size, after {WARM_UP} to warm up. "
        f"The store: {plan['real_reports']} reports filed by `store.add_report`, the rest "
        f"bulk-inserted; {first['distinct_texts']:,} distinct texts of the labelled test set "
        "(a scam's popularity by Zipf's law, copies with other phone numbers) over "
        f"{plan['weeks']} weeks, {plan['grids']} grids of {plan['buildings']} buildings, "
        f"{first['groups']} groups, {first['residents']:,} residents; statuses {statuses}. "
        f"The filtered queue asks for `{d['wave_type']}`, the type of the most copied scam. "
        f"Load average before: {load}{alone}.",
        "",
        f"At {full['reports']:,} reports, in ms. Store: the calls the page's handler makes, "
        f"timed directly ({full['calls']} times); rest: the page's p50 less the store's, i.e. "
        "the session check (a write), the grid's areas, the template and HTTP.",
        "",
        "| page | as | "
        + " | ".join(f"{n} store p50 | {n} page p50 | {n} page p95 | {n} rest" for n in names)
        + " | KB |",
        "|---|---|" + "---|" * (4 * len(names) + 1),
    ]
    for page, (_user, title) in PAGES.items():
        cells = []
        for n in names:
            step = d["databases"][n]["steps"][-1]
            p, s = step["pages"][page], step["store"][page]
            rest = p["p50_ms"] - s["p50_ms"]
            cells.append(f"{s['p50_ms']:.1f} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | {rest:.1f}")
        kb = full["pages"][page]["kb"]
        out.append(f"| {title} | {_who(page)} | " + " | ".join(cells) + f" | {kb:.0f} |")
    plain = [d["databases"][n]["steps"][-1]["store"]["list_reports"]["p50_ms"] for n in names]
    out.append(
        "| plain `store.list_reports(limit=50)` (unfiltered, unscoped) | - | "
        + " | ".join(f"{ms:.1f} | - | - | -" for ms in plain)
        + " | - |"
    )
    sizes = [s["reports"] for s in first["steps"]]
    out += [
        "",
        "As the reports pile up: the page's p50 in ms (the store's in brackets).",
        "",
        "| page | as | " + " | ".join(f"{n} {size:,}" for n in names for size in sizes) + " |",
        "|---|---|" + "---|" * (len(names) * len(sizes)),
    ]
    for page, (_user, title) in PAGES.items():
        cells = [
            f"{step['pages'][page]['p50_ms']:.1f} ({step['store'][page]['p50_ms']:.1f})"
            for n in names
            for step in d["databases"][n]["steps"]
        ]
        out.append(f"| {title} | {_who(page)} | " + " | ".join(cells) + " |")
    out += ["", *_growth(d, names), ""]
    for n in names:
        r = d["databases"][n]
        fills = ", ".join(f"{s['fill_s']:.1f}" for s in r["steps"])
        out.append(
            f"{n}: filling took {fills} s for the steps; the most copied text has "
            f"{r['steps'][-1]['popular_copies']:,} other exact copies; this process held "
            f"{r['rss_mb']:.0f} MB after the runs, {r['peak_rss_mb']:.0f} MB at its peak "
            "(`getrusage`: the analyzer used to fill included); 1-minute load at the "
            f"full-size run {r['steps'][-1]['load']:.1f}; {r['wall_s']:.0f} s in all."
        )
    if "postgresql" in names:
        out.append(
            "PostgreSQL's statistics are refreshed (`ANALYZE`) after each fill, as autovacuum "
            "would on a live store; SQLite's are not, as the product never runs `ANALYZE`."
        )
    issues = problems(d)
    out.append("")
    if issues:
        out.append("**Dashboard pages FAILED their checks:** " + "; ".join(issues))
    else:
        out.append(
            "Every page answered 200 and showed what the tally kept while filling says: the "
            "queue's count and rows, the heatmap's total, the report page's similar reports."
        )
    out.append("")
    return out


def _growth(d: dict[str, Any], names: list[str]) -> list[str]:
    """How the trends page and the queue grow: ms per 1,000 more reports, first to last step."""
    lines = []
    for n in names:
        steps = d["databases"][n]["steps"]
        if len(steps) < 2:
            continue
        a, b = steps[0], steps[-1]

        def slope(page: str, a: dict[str, Any] = a, b: dict[str, Any] = b) -> float:
            grown = b["pages"][page]["p50_ms"] - a["pages"][page]["p50_ms"]
            return 1000 * grown / (b["reports"] - a["reports"])

        lines.append(
            f"{n}: the trends page (staff) grows by {slope('trends_staff'):.1f} ms per 1,000 "
            "reports: it reads every report's time, type and place and buckets them in Python, "
            f"so it is linear in N. The queue (staff) grows by {slope('queue_staff'):.2f} ms "
            "per 1,000: a count and one page, in SQL."
        )
    return lines
