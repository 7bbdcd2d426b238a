"""The review queue of the staff dashboard: what waits for a verdict, and the tools to judge it.

The queue is filtered and paged in SQL (a count and a page, two queries in one transaction),
so a long queue never loads into Python. A report's place in the grid is its chat's area, else
its resident's; the area filter and its label come from joining that area with its parent and
grandparent, which covers the whole tree (community → grid → building) without a query per
level. ``scope`` is ``None`` for admins and staff (everything), or the set of area ids a grid
leader may see: a report placed there by its group or by its resident (whose urgent alert its
leaders get), and no report with no place at all.

Overdue levels follow a service level per risk: a high-risk report should be looked at within
the hour, a low-risk one within a day. Revealing an indicator's raw value is audited (who, which
report, the masked form, never the value).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from bot.nlp import indicators as ind
from bot.nlp.normalize import normalize_text
from bot.store import workflow
from bot.store.errors import NotFound
from bot.store.grid import path_label
from bot.store.models import (
    INDICATOR_STATUSES,
    REPORT_SOURCES,
    REPORT_STATUSES,
    RISKS,
    Area,
    Chat,
    Indicator,
    Report,
    ReportIndicator,
    ReportNote,
    Resident,
    User,
)
from bot.store.rows import chat_view, indicator_view, user_view
from bot.store.types import UTC, utcnow
from bot.store.views import ChatView, IndicatorView, UserView

SHANGHAI = ZoneInfo("Asia/Shanghai")
SORTS = ("risk", "oldest", "newest")  # risk: high > medium > low, then oldest first
OPEN = ("new", "assigned", "in_review")  # statuses still waiting for a verdict
#: An open report older than the first is "yellow", older than the second "red".
SLA = {
    "high": (timedelta(hours=1), timedelta(hours=4)),
    "medium": (timedelta(hours=8), timedelta(hours=24)),
    "low": (timedelta(hours=24), timedelta(hours=72)),
}
MAX_PAGE = 200
MAX_SIMILAR = 50
MAX_NOTE_CHARS = 2000
MAX_QUERY_CHARS = 200  # as long as the indicators page lets a search be
EXCERPT_CHARS = 120

_SCAM_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）.]")
_IN_CHUNK = 500

# The report's place: its chat's area, else its resident's; then up to two areas above it.
_AREA = sa.func.coalesce(Chat.area_id, Resident.area_id)
_A1, _A2, _A3 = aliased(Area), aliased(Area), aliased(Area)
# The type the queue shows and filters by: staff's verdict once given, else the model's.
_shown_type = sa.case(
    (
        sa.and_(
            Report.status.in_(sorted(workflow.REVIEWED)), Report.verdict_scam_type.is_not(None)
        ),
        Report.verdict_scam_type,
    ),
    else_=Report.scam_type,
)
_RISK_RANK = sa.case({"high": 0, "medium": 1}, value=Report.risk, else_=2)
_INDICATOR_COUNT = (
    sa.select(sa.func.count())
    .select_from(ReportIndicator)
    .where(ReportIndicator.report_id == Report.id)
    .correlate(Report)
    .scalar_subquery()
)
_ORDER = {
    "risk": (_RISK_RANK, Report.created_at, Report.id),
    "oldest": (Report.created_at, Report.id),
    "newest": (Report.created_at.desc(), Report.id.desc()),
}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), not {value!r}")


def _check_scope(scope: Iterable[int] | None) -> frozenset[int] | None:
    if scope is None:
        return None
    if isinstance(scope, (str, bytes)) or not isinstance(scope, Iterable):
        raise ValueError("scope must be None or a set of area ids")
    ids = frozenset(scope)
    if not all(_whole(i) for i in ids):
        raise ValueError("scope must be None or a set of area ids (integers)")
    return ids


def _midnight_utc(day: date) -> datetime:
    """The instant a Shanghai calendar day starts, in UTC."""
    return datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)


def overdue_level(status: str, risk: str, created_at: datetime, now: datetime) -> str | None:
    """``"green"``, ``"yellow"`` or ``"red"`` for an open report by its age; ``None`` once
    reviewed. A report exactly at a threshold is not yet past it."""
    if status not in REPORT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(REPORT_STATUSES)}, not {status!r}")
    if risk not in SLA:
        raise ValueError(f"risk must be one of {', '.join(RISKS)}, not {risk!r}")
    _check_aware("created_at", created_at)
    _check_aware("now", now)
    if status not in OPEN:
        return None
    yellow, red = SLA[risk]
    age = now - created_at
    if age > red:
        return "red"
    return "yellow" if age > yellow else "green"


@dataclass(frozen=True)
class QueueFilter:
    """What the queue page asks for; checked when made, so bad query parameters fail early."""

    statuses: tuple[str, ...] = ()  # empty = all
    scam_type: str | None = None  # staff's verdict if reviewed, else the model's type
    area_id: int | None = None  # this area and everything below it
    source: str | None = None
    date_from: date | None = None  # Asia/Shanghai calendar dates of created_at, inclusive
    date_to: date | None = None
    sort: str = "risk"
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.statuses, str) or not isinstance(self.statuses, Iterable):
            raise ValueError("statuses must be a tuple of report statuses")
        object.__setattr__(self, "statuses", tuple(self.statuses))
        for status in self.statuses:
            if status not in REPORT_STATUSES:
                raise ValueError(
                    f"status must be one of {', '.join(REPORT_STATUSES)}, not {status!r}"
                )
        if self.scam_type is not None and (
            not isinstance(self.scam_type, str) or not _SCAM_CODE.fullmatch(self.scam_type)
        ):
            raise ValueError(
                f"scam_type must be a type code such as 'rebate', not {self.scam_type!r}"
            )
        if self.area_id is not None and not _whole(self.area_id):
            raise ValueError(f"area_id must be an area id, not {self.area_id!r}")
        if self.source is not None and self.source not in REPORT_SOURCES:
            raise ValueError(
                f"source must be one of {', '.join(REPORT_SOURCES)}, not {self.source!r}"
            )
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValueError(f"{name} must be a calendar date, not {value!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from must not be after date_to")
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {self.sort!r}")
        if not _whole(self.limit) or not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_PAGE}")
        if not _whole(self.offset) or self.offset < 0:
            raise ValueError("offset must be a whole number, 0 or more")


@dataclass(frozen=True)
class QueueItem:
    id: int
    created_at: datetime
    source: str
    status: str
    risk: str
    scam_type: str
    confidence: float
    verdict_scam_type: str | None
    text_masked: str  # the first 120 characters
    area_id: int | None
    area_label: str | None  # "东湖社区/3网格"; None for a report with no area
    assigned_to: int | None
    assigned_name: str | None
    overdue: str | None  # "green" | "yellow" | "red"; None once reviewed
    indicator_count: int


@dataclass(frozen=True)
class QueuePage:
    items: tuple[QueueItem, ...]
    total: int  # every report the filter matches, whatever the limit and offset


@dataclass(frozen=True)
class SimilarReport:
    id: int
    status: str
    scam_type: str
    verdict_scam_type: str | None
    text_masked: str  # the first 120 characters
    similarity: float
    exact: bool
    created_at: datetime


@dataclass(frozen=True)
class NoteView:
    id: int
    report_id: int
    author_id: int | None
    author_name: str | None
    text: str = field(repr=False)
    at: datetime


def _reports(*columns: Any) -> sa.Select[Any]:
    """A select over reports joined to their area and the two areas above it."""
    return (
        sa.select(*columns)
        .select_from(Report)
        .outerjoin(Chat, Chat.id == Report.chat_id)
        .outerjoin(Resident, Resident.id == Report.resident_id)
        .outerjoin(_A1, _A1.id == _AREA)
        .outerjoin(_A2, _A2.id == _A1.parent_id)
        .outerjoin(_A3, _A3.id == _A2.parent_id)
    )


def _scoped(query: sa.Select[Any], scope: frozenset[int] | None) -> sa.Select[Any]:
    if scope is None:
        return query
    ids = sorted(scope)
    # Seen by the leaders of the group's area and of the resident's: the latter get its urgent
    # alert, so they must be able to open it. NULL is never in: unplaced reports stay hidden.
    return query.where(sa.or_(Chat.area_id.in_(ids), Resident.area_id.in_(ids)))


def _filtered(query: sa.Select[Any], f: QueueFilter) -> sa.Select[Any]:
    if f.statuses:
        query = query.where(Report.status.in_(f.statuses))
    if f.scam_type is not None:
        query = query.where(_shown_type == f.scam_type)
    if f.area_id is not None:
        query = query.where(sa.or_(_A1.id == f.area_id, _A2.id == f.area_id, _A3.id == f.area_id))
    if f.source is not None:
        query = query.where(Report.source == f.source)
    if f.date_from is not None:
        query = query.where(Report.created_at >= _midnight_utc(f.date_from))
    if f.date_to is not None:
        query = query.where(Report.created_at < _midnight_utc(f.date_to + timedelta(days=1)))
    return query


def _name(display_name: str | None, username: str | None) -> str | None:
    return display_name or username


def _note_view(note: ReportNote, author: User | None) -> NoteView:
    return NoteView(
        id=note.id,
        report_id=note.report_id,
        author_id=note.author_id,
        author_name=None if author is None else _name(author.display_name, author.username),
        text=note.text,
        at=note.at,
    )


def _typed_values(query: str) -> set[tuple[str, str]]:
    """The (kind, value) pairs a typed search may mean, canonical as the extractor makes them.

    What the extractor finds in it (a phone written "+86 138-0013-8000"), and the text itself
    as any kind: as typed, lower and upper case, and digits only when it is a number.
    """
    from bot.store.repo import INDICATOR_KINDS  # repo imports this module

    pairs = {(f.kind, f.value) for f in ind.find_indicators(normalize_text(query))}
    forms = {query, query.lower(), query.upper()}
    number = _PHONE_SEPARATORS.sub("", query)
    if number.startswith("+"):
        number = number[1:]
    if number.isdigit():
        forms.add(number)
        for prefix in ("0086", "86"):
            if number.startswith(prefix) and len(number) == len(prefix) + 11:
                forms.add(number[len(prefix) :])
    pairs.update((kind, form) for kind in INDICATOR_KINDS for form in forms)
    return pairs


class Review:
    """Mixed into ``Store``: needs ``run_in``, ``_audit``, ``_matches`` and
    ``set_indicator_status``."""

    def review_queue(
        self, filter: QueueFilter, scope: frozenset[int] | None, now: datetime | None = None
    ) -> QueuePage:
        """One page of the queue and the number of reports the filter matches."""
        if not isinstance(filter, QueueFilter):
            raise ValueError("filter must be a QueueFilter")
        ids = _check_scope(scope)
        if now is not None:
            _check_aware("now", now)
        at = now or utcnow()

        def work(session: Session) -> tuple[int, list[Any]]:
            count = _filtered(_scoped(_reports(sa.func.count(Report.id)), ids), filter)
            total = int(session.execute(count).scalar_one())
            page = (
                _filtered(
                    _scoped(
                        _reports(
                            Report.id,
                            Report.created_at,
                            Report.source,
                            Report.status,
                            Report.risk,
                            Report.scam_type,
                            Report.confidence,
                            Report.verdict_scam_type,
                            sa.func.substr(Report.text_masked, 1, EXCERPT_CHARS).label("excerpt"),
                            _A1.id.label("area_id"),
                            _A1.name.label("name1"),
                            _A2.name.label("name2"),
                            _A3.name.label("name3"),
                            Report.assigned_to,
                            User.display_name,
                            User.username,
                            _INDICATOR_COUNT.label("indicator_count"),
                        ).outerjoin(User, User.id == Report.assigned_to),
                        ids,
                    ),
                    filter,
                )
                .order_by(*_ORDER[filter.sort])
                .limit(filter.limit)
                .offset(filter.offset)
            )
            return total, session.execute(page).all()

        total, rows = self.run_in(work, write=False)  # type: ignore[attr-defined]
        items = tuple(
            QueueItem(
                id=row.id,
                created_at=row.created_at,
                source=row.source,
                status=row.status,
                risk=row.risk,
                scam_type=row.scam_type,
                confidence=row.confidence,
                verdict_scam_type=row.verdict_scam_type,
                text_masked=row.excerpt,
                area_id=row.area_id,
                area_label=(
                    path_label(row.name1, row.name2, row.name3)
                    if row.area_id is not None
                    else None
                ),
                assigned_to=row.assigned_to,
                assigned_name=_name(row.display_name, row.username),
                overdue=overdue_level(row.status, row.risk, row.created_at, at),
                indicator_count=int(row.indicator_count),
            )
            for row in rows
        )
        return QueuePage(items=items, total=total)

    def report_area_id(self, report_id: int) -> int | None:
        """Where a report is in the grid (its chat's area, else its resident's); NotFound."""

        def work(session: Session) -> int | None:
            row = session.execute(
                _reports(_AREA.label("area_id")).where(Report.id == report_id)
            ).first()
            if row is None:
                raise NotFound(f"no report {report_id}")
            return row.area_id

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def report_chat(self, report_id: int) -> ChatView | None:
        """The chat a report came from, so the page says which group (and what kind of chat)
        from the record itself; None when it came from a private chat with the bot (those reports
        keep no chat). NotFound when there is no such report."""

        def work(session: Session) -> ChatView | None:
            row = session.execute(
                sa.select(Report.id, Chat)
                .outerjoin(Chat, Chat.id == Report.chat_id)
                .where(Report.id == report_id)
            ).first()
            if row is None:
                raise NotFound(f"no report {report_id}")
            return chat_view(row.Chat) if row.Chat is not None else None

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def report_visible(self, report_id: int, scope: frozenset[int] | None) -> bool:
        """Whether someone with this scope may see the report (False when there is none)."""
        ids = _check_scope(scope)

        def work(session: Session) -> bool:
            query = _scoped(_reports(Report.id), ids).where(Report.id == report_id)
            return session.execute(query).first() is not None

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def similar_reports(
        self, report_id: int, scope: frozenset[int] | None, limit: int = 5
    ) -> list[SimilarReport]:
        """Other reports of the same or a near text, best first: exact copies, then the closest,
        then the newest; only those the scope may see."""
        ids = _check_scope(scope)
        if not _whole(limit) or not 1 <= limit <= MAX_SIMILAR:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_SIMILAR}")

        def work(session: Session) -> list[SimilarReport]:
            normalized = session.execute(
                sa.select(Report.normalized).where(Report.id == report_id)
            ).scalar_one_or_none()
            if normalized is None:
                raise NotFound(f"no report {report_id}")
            scores = {
                row.id: (score, exact)
                for row, score, exact in self._matches(session, normalized)  # type: ignore[attr-defined]
                if row.id != report_id
            }
            found: list[SimilarReport] = []
            candidates = sorted(scores)
            for start in range(0, len(candidates), _IN_CHUNK):
                query = _reports(
                    Report.id,
                    Report.status,
                    Report.scam_type,
                    Report.verdict_scam_type,
                    sa.func.substr(Report.text_masked, 1, EXCERPT_CHARS).label("excerpt"),
                    Report.created_at,
                ).where(Report.id.in_(candidates[start : start + _IN_CHUNK]))
                for row in session.execute(_scoped(query, ids)):
                    score, exact = scores[row.id]
                    found.append(
                        SimilarReport(
                            id=row.id,
                            status=row.status,
                            scam_type=row.scam_type,
                            verdict_scam_type=row.verdict_scam_type,
                            text_masked=row.excerpt,
                            similarity=score,
                            exact=exact,
                            created_at=row.created_at,
                        )
                    )
            found.sort(
                key=lambda s: (not s.exact, -s.similarity, -s.created_at.timestamp(), -s.id)
            )
            return found[:limit]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def add_note(self, report_id: int, author_id: int, text: str) -> NoteView:
        """A staff note on a report; audited with its length only (notes may quote residents)."""
        if not isinstance(text, str):
            raise ValueError("a note is text")
        body = text.strip()
        if not 1 <= len(body) <= MAX_NOTE_CHARS:
            raise ValueError(f"a note must be 1 to {MAX_NOTE_CHARS} characters")

        def work(session: Session) -> NoteView:
            if session.get(Report, report_id) is None:
                raise NotFound(f"no report {report_id}")
            author = session.get(User, author_id)
            if author is None:
                raise NotFound(f"no user {author_id}")
            note = ReportNote(report_id=report_id, author_id=author_id, text=body, at=utcnow())
            session.add(note)
            session.flush()
            self._audit(  # type: ignore[attr-defined]
                session,
                f"user:{author_id}",
                "report.note",
                "report",
                report_id,
                {"length": len(body)},
            )
            return _note_view(note, author)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def report_notes(self, report_id: int) -> list[NoteView]:
        """A report's notes, oldest first; NotFound when there is no such report."""

        def work(session: Session) -> list[NoteView]:
            if session.get(Report, report_id) is None:
                raise NotFound(f"no report {report_id}")
            rows = session.execute(
                sa.select(ReportNote, User)
                .outerjoin(User, User.id == ReportNote.author_id)
                .where(ReportNote.report_id == report_id)
                .order_by(ReportNote.at, ReportNote.id)
            ).all()
            return [_note_view(note, author) for note, author in rows]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def reveal_indicator(self, report_id: int, indicator_id: int, actor: str) -> str:
        """The raw value of one of a report's indicators, for staff who need to act on it.

        Audited as ``indicator.reveal`` with the kind, the masked form and the report: who saw
        what stays on record without the record itself holding the value.
        """
        if not isinstance(actor, str) or not 1 <= len(actor) <= 64:
            raise ValueError("actor must be 1 to 64 characters, e.g. 'user:3'")

        def work(session: Session) -> str:
            row = session.execute(
                sa.select(Indicator.kind, Indicator.value, Indicator.masked)
                .join(ReportIndicator, ReportIndicator.indicator_id == Indicator.id)
                .where(ReportIndicator.report_id == report_id, Indicator.id == indicator_id)
            ).first()
            if row is None:
                raise NotFound(f"report {report_id} has no indicator {indicator_id}")
            details = {"kind": row.kind, "masked": row.masked, "report_id": report_id}
            self._audit(  # type: ignore[attr-defined]
                session, actor, "indicator.reveal", "indicator", indicator_id, details
            )
            return str(row.value)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def set_indicator_status_by_id(
        self, indicator_id: int, status: str, actor: str, note: str | None = None
    ) -> IndicatorView:
        """``set_indicator_status`` for the indicator a page shows by id (same rules, audit)."""
        if status not in INDICATOR_STATUSES:
            raise ValueError(
                f"indicator status must be one of {', '.join(INDICATOR_STATUSES)}, not {status!r}"
            )

        def work(session: Session) -> tuple[str, str]:
            row = session.execute(
                sa.select(Indicator.kind, Indicator.value).where(Indicator.id == indicator_id)
            ).first()
            if row is None:
                raise NotFound(f"no indicator {indicator_id}")
            return row.kind, row.value

        kind, value = self.run_in(work, write=False)  # type: ignore[attr-defined]
        return self.set_indicator_status(kind, value, status, actor, note=note)  # type: ignore[attr-defined]

    def search_indicators(
        self,
        query: str = "",
        status: str | None = "confirmed",
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[IndicatorView], int]:
        """Indicators by what staff type, newest confirmed (else last seen) first, and how many.

        The query matches a value exactly, however it was typed (spaces, dashes, +86), or a
        substring of the masked form or the note; empty matches everything. Never a substring of
        the raw value: a few digits at a time, that would unmask a number on a masked page.
        ``status`` or ``kind`` None means any.
        """
        from bot.store.repo import INDICATOR_KINDS, indicator_hash  # repo imports this module

        if not isinstance(query, str):
            raise ValueError("query must be text")
        typed = query.strip()
        if len(typed) > MAX_QUERY_CHARS:
            raise ValueError(f"query must be at most {MAX_QUERY_CHARS} characters")
        if status is not None and status not in INDICATOR_STATUSES:
            raise ValueError(
                f"indicator status must be one of {', '.join(INDICATOR_STATUSES)}, not {status!r}"
            )
        if kind is not None and kind not in INDICATOR_KINDS:
            raise ValueError(
                f"indicator kind must be one of {', '.join(sorted(INDICATOR_KINDS))}, not {kind!r}"
            )
        if not _whole(limit) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_PAGE}")
        if not _whole(offset) or offset < 0:
            raise ValueError("offset must be a whole number, 0 or more")
        conditions = []
        if status is not None:
            conditions.append(Indicator.status == status)
        if kind is not None:
            conditions.append(Indicator.kind == kind)
        if typed:
            hashes = sorted({indicator_hash(k, v) for k, v in _typed_values(typed)})
            conditions.append(
                sa.or_(
                    Indicator.value_hash.in_(hashes),
                    Indicator.masked.icontains(typed, autoescape=True),
                    Indicator.note.icontains(typed, autoescape=True),
                )
            )

        def work(session: Session) -> tuple[list[IndicatorView], int]:
            total = session.execute(
                sa.select(sa.func.count()).select_from(Indicator).where(*conditions)
            ).scalar_one()
            rows = session.execute(
                sa.select(Indicator)
                .where(*conditions)
                .order_by(
                    sa.func.coalesce(Indicator.confirmed_at, Indicator.last_seen_at).desc(),
                    Indicator.id.desc(),
                )
                .limit(limit)
                .offset(offset)
            ).scalars()
            return [indicator_view(row) for row in rows], int(total)

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def staff_users(self) -> list[UserView]:
        """Active admins and staff: whom a report may be assigned to."""

        def work(session: Session) -> list[UserView]:
            rows = session.execute(
                sa.select(User)
                .where(User.active.is_(True), User.role.in_(("admin", "staff")))
                .order_by(User.id)
            ).scalars()
            return [user_view(user) for user in rows]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]


__all__ = [
    "OPEN",
    "SLA",
    "SORTS",
    "NoteView",
    "QueueFilter",
    "QueueItem",
    "QueuePage",
    "Review",
    "SimilarReport",
    "overdue_level",
]
