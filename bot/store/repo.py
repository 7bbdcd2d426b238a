"""The repository: every read and write the custom actions, the bot and the dashboard make.

Each public method of ``Store`` is one transaction and returns frozen views (``views``), so no
caller holds a session or an ORM object. What must hold under concurrency holds on both
databases:

- get-or-create rows (residents, indicators, chats, leaders) are single
  ``INSERT ... ON CONFLICT`` statements, never "select, then insert";
- a report's indicators are upserted in ``value_hash`` order, so two reports sharing
  indicators lock them in the same order and cannot deadlock;
- status changes lock the report row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every
  write transaction is ``BEGIN IMMEDIATE``, which admits one writer at a time);
- the inbox is claimed by selecting the oldest pending rows ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL (inside ``BEGIN IMMEDIATE`` on SQLite) and updating them in the same transaction,
  so two workers never get the same message.

A transaction that fails because the database is locked, restarting or unreachable is retried
with back-off for up to ``retry_seconds`` (``tx``); after that ``StoreUnavailable`` is raised
and the caller may spool what it was writing. (A connection lost during ``COMMIT`` leaves it
unknown whether the commit happened; the retry may then write a second copy, the lesser evil.)
Log lines and exceptions name tables and statuses, never a resident's text or an indicator's
value (the engine hides statement parameters).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.nlp import indicators as ind
from bot.settings import Settings
from bot.store import similarity, workflow
from bot.store.accounts import Accounts
from bot.store.campaigns import Campaigns
from bot.store.cases import Cases
from bot.store.errors import InvalidTransition, NotFound, StoreUnavailable
from bot.store.grid import Grid
from bot.store.models import (
    AREA_LEVELS,
    CHAT_KINDS,
    INDICATOR_STATUSES,
    REPORT_SOURCES,
    REPORT_STATUSES,
    RISKS,
    USER_ROLES,
    Alert,
    Area,
    AreaLeader,
    AuditLog,
    Chat,
    InboundMessage,
    Indicator,
    Report,
    ReportEvent,
    ReportIndicator,
    ReportMinhashBand,
    Resident,
    User,
)
from bot.store.outbox import Outbox
from bot.store.review import Review
from bot.store.rows import (
    alert_view,
    area_view,
    chat_view,
    inbound_view,
    indicator_view,
    report_view,
    resident_view,
    user_view,
)
from bot.store.trends import Trends
from bot.store.tx import Transactions
from bot.store.types import UTC, to_cents, utcnow
from bot.store.views import (
    AlertView,
    AreaView,
    ChatView,
    EventView,
    InboundView,
    IndicatorView,
    NewOutbound,
    NewReport,
    OutboundView,
    ReportView,
    ResidentView,
    SeenBefore,
    UserView,
)

__all__ = [  # the views and errors are importable from here too
    "AlertView",
    "AreaView",
    "ChatView",
    "EventView",
    "InboundView",
    "IndicatorView",
    "InvalidTransition",
    "NewOutbound",
    "NewReport",
    "NotFound",
    "OutboundView",
    "ReportView",
    "ResidentView",
    "SeenBefore",
    "Store",
    "StoreUnavailable",
    "UserView",
    "indicator_hash",
    "user_id_of",
]

T = TypeVar("T")

NOT_SCAM = "not_scam"
APP = "app"
#: The indicator kinds of ``bot.nlp.indicators`` and the app names of ``bot.nlp.analysis``.
INDICATOR_KINDS = frozenset(
    {
        ind.PHONE_MOBILE,
        ind.PHONE_LANDLINE,
        ind.PHONE_SERVICE,
        ind.LINK,
        ind.BANK_CARD,
        ind.ID_NUMBER,
        ind.QQ,
        ind.WECHAT,
        ind.MONEY,
        APP,
    }
)
#: Delivery attempts after which an alert is given up (``failed``) instead of retried.
ALERT_MAX_ATTEMPTS = 5
#: Longest error text kept on an inbox message or an alert.
ERROR_MAX_CHARS = 2000

_USER_ACTOR = re.compile(r"user:(\d+)")
_SCAM_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_FIRST_RETRY_DELAY = 0.05
_LONGEST_RETRY_DELAY = 1.0
_IN_CHUNK = 500
_OLDEST = datetime.min.replace(tzinfo=UTC)


def indicator_hash(kind: str, value: str) -> str:
    """The look-up key of an indicator: sha256 hex of ``"kind:value"``."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def user_id_of(actor: str) -> int | None:
    """The staff user id in an actor string ``"user:<id>"``, else ``None``."""
    match = _USER_ACTOR.fullmatch(actor)
    return int(match.group(1)) if match else None


def _one_of(name: str, value: str | None, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} is a naive datetime: give the store aware datetimes (UTC)")


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:ERROR_MAX_CHARS]


class Store(Accounts, Review, Cases, Campaigns, Grid, Outbox, Trends, Transactions):
    """The store on one database URL; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        retry_seconds: float = 5.0,
        scam_codes: Collection[str] | None = None,
    ) -> None:
        super().__init__(url, retry_seconds=retry_seconds)
        self._scam_codes = frozenset(scam_codes) - {NOT_SCAM} if scam_codes else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store at ``DATABASE_URL``; verdicts are checked against the taxonomy's codes."""
        from bot.nlp.taxonomy import load_taxonomy

        codes = load_taxonomy(settings.taxonomy_path).scam_codes
        return cls(
            settings.database_url, retry_seconds=settings.store_retry_seconds, scam_codes=codes
        )

    def _upsert_resident(self, session: Session, sender_id: str, channel: str) -> int:
        if not sender_id or len(sender_id) > 128:
            raise ValueError("sender_id must be 1 to 128 characters")
        now = utcnow()
        stmt = self._insert(Resident).values(
            sender_id=sender_id,
            channel=channel,
            subscribed=False,
            created_at=now,
            last_seen_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["sender_id"], set_={"last_seen_at": stmt.excluded.last_seen_at}
        ).returning(Resident.__table__.c.id)
        return int(session.execute(stmt).scalar_one())

    @staticmethod
    def _fresh(session: Session, model: type[T], key: Any) -> T | None:
        """The row by primary key, read again even if the session holds it."""
        return session.get(model, key, populate_existing=True)

    @staticmethod
    def _locked_report(session: Session, report_id: int) -> Report:
        report = session.execute(
            sa.select(Report)
            .where(Report.id == report_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if report is None:
            raise NotFound(f"no report {report_id}")
        return report

    def _audit(
        self,
        session: Session,
        actor: str,
        action: str,
        target_type: str,
        target_id: int | None,
        details: dict[str, Any] | None,
    ) -> int:
        row = AuditLog(
            at=utcnow(),
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=dict(details or {}),
        )
        session.add(row)
        session.flush()
        return row.id

    # Residents

    def resident(self, sender_id: str, channel: str = "rest") -> ResidentView:
        """The resident behind a conversation id, created on first contact; marks them seen."""

        def work(session: Session) -> ResidentView:
            rid = self._upsert_resident(session, sender_id, channel)
            resident = self._fresh(session, Resident, rid)
            assert resident is not None
            return resident_view(resident)

        return self.run_in(work, write=True)

    def set_subscribed(self, sender_id: str, subscribed: bool) -> ResidentView:
        """Subscribe to or unsubscribe from campaign messages."""

        def work(session: Session) -> ResidentView:
            rid = self._upsert_resident(session, sender_id, "rest")
            resident = self._fresh(session, Resident, rid)
            assert resident is not None
            if resident.subscribed != subscribed:
                resident.subscribed = subscribed
                if subscribed:
                    resident.subscribed_at = utcnow()
                else:
                    resident.unsubscribed_at = utcnow()
            session.flush()
            return resident_view(resident)

        return self.run_in(work, write=True)

    def set_profile(self, sender_id: str, age_group: str | None) -> ResidentView:
        """Record an age group given with consent, or (``None``) withdraw profile and consent."""

        def work(session: Session) -> ResidentView:
            rid = self._upsert_resident(session, sender_id, "rest")
            resident = self._fresh(session, Resident, rid)
            assert resident is not None
            resident.age_group = age_group
            resident.profile_consent_at = utcnow() if age_group is not None else None
            action = "profile.consent" if age_group is not None else "profile.withdraw"
            self._audit(session, f"resident:{rid}", action, "resident", rid, None)
            session.flush()
            return resident_view(resident)

        return self.run_in(work, write=True)

    def set_resident_area(self, sender_id: str, area_id: int | None) -> ResidentView:
        """Where a resident lives (alerts go to that area's leaders)."""

        def work(session: Session) -> ResidentView:
            if area_id is not None and session.get(Area, area_id) is None:
                raise NotFound(f"no area {area_id}")
            rid = self._upsert_resident(session, sender_id, "rest")
            resident = self._fresh(session, Resident, rid)
            assert resident is not None
            resident.area_id = area_id
            session.flush()
            return resident_view(resident)

        return self.run_in(work, write=True)

    # Reports

    def _check_new_report(self, new: NewReport) -> None:
        _one_of("source", new.source, REPORT_SOURCES)
        _one_of("risk", new.risk, RISKS)
        if not 0.0 <= new.confidence <= 1.0:
            raise ValueError("confidence must be between 0 and 1")
        if len(new.scam_type) > 32 or not _SCAM_CODE.fullmatch(new.scam_type):
            raise ValueError("scam_type must be a type code such as 'rebate' or 'not_scam'")
        _check_aware("happened_at", new.happened_at)
        for kind, value, _masked in new.indicators:
            _one_of("indicator kind", kind, sorted(INDICATOR_KINDS))
            if not value:
                raise ValueError("an indicator needs a value")

    def _link_indicators(
        self, session: Session, report_id: int, found: Iterable[tuple[str, str, str]]
    ) -> list[IndicatorView]:
        """Upsert the indicators (seen once more) and link them to the report, in one go."""
        now = utcnow()
        unique: dict[str, tuple[str, str, str]] = {}
        for kind, value, masked in found:
            unique.setdefault(indicator_hash(kind, value), (kind, value, masked))
        if not unique:
            return []
        table = Indicator.__table__
        rows = [
            {
                "kind": kind,
                "value": value,
                "value_hash": value_hash,
                "masked": masked or ind.mask(kind, value),
                "status": "suspected",
                "seen_count": 1,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            # Rows are inserted, and so locked, in this order: the same in every transaction.
            for value_hash, (kind, value, masked) in sorted(unique.items())
        ]
        stmt = self._insert(Indicator).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["value_hash"],
            set_={
                "seen_count": table.c.seen_count + 1,
                "last_seen_at": stmt.excluded.last_seen_at,
            },
        ).returning(*table.c)
        upserted = session.execute(stmt).all()
        session.execute(
            sa.insert(ReportIndicator.__table__),
            [{"report_id": report_id, "indicator_id": row.id} for row in upserted],
        )
        return sorted((indicator_view(row) for row in upserted), key=lambda view: view.id)

    def _load_report(self, session: Session, report_id: int) -> ReportView | None:
        report = session.execute(
            sa.select(Report)
            .where(Report.id == report_id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        return None if report is None else report_view(report)

    def add_report(self, new: NewReport) -> ReportView:
        """File a report with its first event, its LSH bands and its indicators, all at once."""
        self._check_new_report(new)

        def work(session: Session) -> ReportView:
            now = utcnow()
            if (
                new.inbound_message_id is not None
                and session.get(InboundMessage, new.inbound_message_id) is None
            ):
                raise NotFound(f"no inbound message {new.inbound_message_id}")
            resident_id = self._upsert_resident(session, new.sender_id, new.channel)
            chat_id = None
            if new.chat_external_id is not None:
                chat_id = session.execute(
                    sa.select(Chat.id).where(
                        Chat.channel == new.channel, Chat.external_id == new.chat_external_id
                    )
                ).scalar_one_or_none()
            report = Report(
                resident_id=resident_id,
                chat_id=chat_id,
                inbound_message_id=new.inbound_message_id,
                source=new.source,
                text=new.text,
                text_masked=new.text_masked,
                normalized=new.normalized,
                text_hash=similarity.text_hash(new.normalized),
                scam_type=new.scam_type,
                confidence=float(new.confidence),
                risk=new.risk,
                intent=new.intent,
                red_flags=[dict(flag) for flag in new.red_flags],
                details=dict(new.details),
                money_lost=new.money_lost,
                # As they will read back: whole cents, UTC.
                amount=None if new.amount is None else to_cents(new.amount),
                happened_at=None if new.happened_at is None else new.happened_at.astimezone(UTC),
                status=workflow.NEW,
                created_at=now,
                updated_at=now,
            )
            session.add(report)
            session.flush()
            event = ReportEvent(
                report_id=report.id, from_status=None, to_status=workflow.NEW, actor="bot", at=now
            )
            session.add(event)
            buckets = similarity.text_bands(new.normalized)
            if buckets:
                session.execute(
                    sa.insert(ReportMinhashBand.__table__),
                    [
                        {"report_id": report.id, "band": band, "bucket": bucket}
                        for band, bucket in enumerate(buckets)
                    ],
                )
            indicators = self._link_indicators(session, report.id, new.indicators)
            session.flush()
            return report_view(
                report, sender_id=new.sender_id, indicators=indicators, events=(event,)
            )

        return self.run_in(work, write=True)

    def update_report(
        self,
        report_id: int,
        *,
        details: dict[str, Any] | None = None,
        money_lost: bool | None = None,
        amount: Decimal | None = None,
        happened_at: datetime | None = None,
        source: str | None = None,
    ) -> ReportView:
        """Fill in a report (the report form after a check); ``details`` are merged in."""
        if source is not None:
            _one_of("source", source, REPORT_SOURCES)
        _check_aware("happened_at", happened_at)

        def work(session: Session) -> ReportView:
            report = self._locked_report(session, report_id)
            if details:
                report.details = {**(report.details or {}), **details}
            if money_lost is not None:
                report.money_lost = money_lost
            if amount is not None:
                report.amount = amount
            if happened_at is not None:
                report.happened_at = happened_at
            if source is not None:
                report.source = source
            report.updated_at = utcnow()
            session.flush()
            session.expunge_all()  # read back what the database now holds, not these objects
            view = self._load_report(session, report_id)
            assert view is not None
            return view

        return self.run_in(work, write=True)

    def get_report(self, report_id: int) -> ReportView | None:
        """A report with its events (oldest first) and indicators, or ``None``."""
        return self.run_in(lambda session: self._load_report(session, report_id), write=False)

    def report_for_inbound(self, inbound_message_id: int) -> ReportView | None:
        """The report already logged for an inbox message (a retried turn must not log twice)."""

        def work(session: Session) -> ReportView | None:
            report_id = session.execute(
                sa.select(Report.id)
                .where(Report.inbound_message_id == inbound_message_id)
                .order_by(Report.id)
                .limit(1)
            ).scalar_one_or_none()
            return None if report_id is None else self._load_report(session, report_id)

        return self.run_in(work, write=False)

    def list_reports(
        self, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[ReportView]:
        """Reports, newest first, optionally of one status."""
        if status is not None:
            _one_of("status", status, REPORT_STATUSES)

        def work(session: Session) -> list[ReportView]:
            query = sa.select(Report).order_by(Report.created_at.desc(), Report.id.desc())
            if status is not None:
                query = query.where(Report.status == status)
            rows = session.execute(query.limit(limit).offset(offset)).scalars().all()
            return [report_view(r) for r in rows]

        return self.run_in(work, write=False)

    def reports_to_answer(self, channel: str, limit: int = 50) -> list[ReportView]:
        """Reports with a verdict whose reporter (on ``channel``) has not been told, oldest
        verdict first. Automatic group reports have nobody waiting for an answer."""

        def work(session: Session) -> list[ReportView]:
            rows = session.execute(
                sa.select(Report)
                .join(Resident, Report.resident_id == Resident.id)
                .where(
                    Report.status.in_(("confirmed", "dismissed")),
                    Report.source != "group_auto",
                    Resident.channel == channel,
                )
                .order_by(Report.reviewed_at, Report.id)
                .limit(limit)
            ).scalars()
            return [report_view(r) for r in rows]

        return self.run_in(work, write=False)

    def count_reports(self, status: str | None = None) -> int:
        if status is not None:
            _one_of("status", status, REPORT_STATUSES)

        def work(session: Session) -> int:
            query = sa.select(sa.func.count()).select_from(Report)
            if status is not None:
                query = query.where(Report.status == status)
            return int(session.execute(query).scalar_one())

        return self.run_in(work, write=False)

    def reports_of(self, sender_id: str, limit: int = 5) -> list[ReportView]:
        """One resident's reports, newest first."""

        def work(session: Session) -> list[ReportView]:
            rows = (
                session.execute(
                    sa.select(Report)
                    .join(Resident, Report.resident_id == Resident.id)
                    .where(Resident.sender_id == sender_id)
                    .order_by(Report.created_at.desc(), Report.id.desc())
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            return [report_view(r) for r in rows]

        return self.run_in(work, write=False)

    def transition(
        self,
        report_id: int,
        to_status: str,
        actor: str,
        *,
        note: str | None = None,
        verdict_scam_type: str | None = None,
        assigned_to: int | None = None,
    ) -> ReportView:
        """Move a report to ``to_status`` (see ``workflow.TRANSITIONS``), recorded and audited.

        ``confirmed`` needs ``verdict_scam_type`` (a scam code); ``dismissed`` records the
        verdict ``not_scam``; the note of a confirm or dismiss becomes the verdict note.
        ``assigned`` sets ``assigned_to`` when given (a user id), else assigns an actor
        ``"user:<id>"`` to themselves; otherwise (``"cli"``) only the event's note says to whom.
        """
        if not actor or len(actor) > 64:
            raise ValueError("actor must be 1 to 64 characters, e.g. 'bot', 'cli' or 'user:3'")

        def work(session: Session) -> ReportView:
            report = self._locked_report(session, report_id)
            from_status = report.status
            if to_status not in REPORT_STATUSES:
                raise InvalidTransition(from_status, to_status, "no such status")
            workflow.check(from_status, to_status)
            now = utcnow()
            details: dict[str, Any] = {"from": from_status, "to": to_status}
            if to_status == workflow.CONFIRMED:
                self._check_verdict(from_status, verdict_scam_type)
                report.verdict_scam_type = verdict_scam_type
            elif to_status == workflow.DISMISSED:
                if verdict_scam_type not in (None, NOT_SCAM):
                    raise InvalidTransition(
                        from_status, to_status, f"a dismissed report's verdict is {NOT_SCAM!r}"
                    )
                report.verdict_scam_type = NOT_SCAM
            elif verdict_scam_type is not None:
                raise InvalidTransition(
                    from_status, to_status, "a verdict is given when confirming or dismissing"
                )
            if to_status in (workflow.CONFIRMED, workflow.DISMISSED):
                report.verdict_note = note
                report.reviewed_at = now
                report.reviewed_by = user_id_of(actor)
                details["verdict"] = report.verdict_scam_type
            if to_status == workflow.ASSIGNED:
                assignee = assigned_to if assigned_to is not None else user_id_of(actor)
                if assignee is not None:
                    if session.get(User, assignee) is None:
                        raise NotFound(f"no user {assignee}")
                    report.assigned_to = assignee
                    details["assigned_to"] = assignee
            elif assigned_to is not None:
                raise InvalidTransition(from_status, to_status, "assigned_to is for 'assigned'")
            if to_status == workflow.ANSWERED:
                report.answered_at = now
            report.status = to_status
            report.updated_at = now
            session.add(
                ReportEvent(
                    report_id=report_id,
                    from_status=from_status,
                    to_status=to_status,
                    actor=actor,
                    note=note,
                    at=now,
                )
            )
            self._audit(session, actor, "report.transition", "report", report_id, details)
            session.flush()
            session.expunge_all()  # read back what the database now holds, not these objects
            view = self._load_report(session, report_id)
            assert view is not None
            return view

        return self.run_in(work, write=True)

    def _check_verdict(self, from_status: str, verdict: str | None) -> None:
        if verdict is None or verdict == NOT_SCAM or not _SCAM_CODE.fullmatch(verdict):
            raise InvalidTransition(
                from_status, workflow.CONFIRMED, "confirming needs verdict_scam_type, a scam code"
            )
        if self._scam_codes is not None and verdict not in self._scam_codes:
            raise InvalidTransition(
                from_status, workflow.CONFIRMED, f"{verdict!r} is not a scam type code"
            )

    # Seen before

    def _matches(self, session: Session, normalized: str) -> list[tuple[Any, float, bool]]:
        """Every report with the same text (exact) or a near one: (row, similarity, exact)."""
        digest = similarity.text_hash(normalized)
        columns = (
            Report.id,
            Report.status,
            Report.verdict_scam_type,
            Report.reviewed_at,
        )
        found: list[tuple[Any, float, bool]] = [
            (row, 1.0, True)
            for row in session.execute(sa.select(*columns).where(Report.text_hash == digest))
        ]
        buckets = similarity.text_bands(normalized)
        if not buckets:
            return found
        in_bucket = sa.select(ReportMinhashBand.report_id).where(
            sa.or_(
                *(
                    sa.and_(ReportMinhashBand.band == band, ReportMinhashBand.bucket == bucket)
                    for band, bucket in enumerate(buckets)
                )
            )
        )
        candidates = session.execute(
            sa.select(*columns, Report.text_hash, Report.normalized).where(
                Report.id.in_(in_bucket), Report.text_hash != digest
            )
        )
        query_shingles = similarity.shingles(normalized)
        scores: dict[str, float] = {}
        for row in candidates:
            if row.text_hash not in scores:
                scores[row.text_hash] = similarity.jaccard(
                    query_shingles, similarity.shingles(row.normalized)
                )
            if scores[row.text_hash] >= similarity.NEAR_THRESHOLD:
                found.append((row, scores[row.text_hash], False))
        return found

    def seen_before(self, normalized: str) -> SeenBefore | None:
        """The staff verdict on this text or a near copy of it, if staff have reviewed one.

        An exact copy (same normalised text) wins over near ones; among several, the most
        recent review wins. Reports not yet reviewed give no verdict but are counted.
        """

        return self.run_in(
            lambda session: self._verdict_of(self._matches(session, normalized)), write=False
        )

    def look_up(self, normalized: str) -> tuple[SeenBefore | None, int]:
        """``seen_before`` and ``times_reported`` in one pass (the bot asks both every time)."""

        def work(session: Session) -> tuple[SeenBefore | None, int]:
            matches = self._matches(session, normalized)
            return self._verdict_of(matches), len(matches)

        return self.run_in(work, write=False)

    @staticmethod
    def _verdict_of(matches: list[tuple[Any, float, bool]]) -> SeenBefore | None:
        reviewed = [
            m
            for m in matches
            if m[0].status in (workflow.CONFIRMED, workflow.DISMISSED)
            or (m[0].status == workflow.ANSWERED and m[0].verdict_scam_type is not None)
        ]
        if not reviewed:
            return None
        row, score, exact = max(
            reviewed, key=lambda m: (m[2], m[0].reviewed_at or _OLDEST, m[1], m[0].id)
        )
        scam_type = row.verdict_scam_type or NOT_SCAM
        return SeenBefore(
            report_id=row.id,
            verdict="dismissed" if scam_type == NOT_SCAM else "confirmed",
            scam_type=scam_type,
            match="exact" if exact else "near",
            similarity=score,
            times_reported=len(matches),
        )

    def group_warned_recently(
        self, channel: str, chat_external_id: str, normalized: str, since: datetime
    ) -> bool:
        """Whether the bot already warned this group about this text or a near copy since then."""
        _check_aware("since", since)

        def work(session: Session) -> bool:
            chat_id = session.execute(
                sa.select(Chat.id).where(
                    Chat.channel == channel, Chat.external_id == chat_external_id
                )
            ).scalar_one_or_none()
            if chat_id is None:
                return False
            ids = {row[0].id for row in self._matches(session, normalized)}
            if not ids:
                return False
            hit = session.execute(
                sa.select(Report.id)
                .where(
                    Report.id.in_(ids),
                    Report.chat_id == chat_id,
                    Report.source == "group_auto",
                    Report.created_at >= since,
                )
                .limit(1)
            ).first()
            return hit is not None

        return self.run_in(work, write=False)

    def times_reported(self, normalized: str) -> int:
        """How many reports, of any status, have this text or a near copy of it."""
        return self.run_in(lambda session: len(self._matches(session, normalized)), write=False)

    # Indicators

    def indicator_statuses(
        self, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], IndicatorView]:
        """The known indicators among ``(kind, value)`` pairs, looked up by hash."""
        by_hash = {indicator_hash(kind, value): (kind, value) for kind, value in pairs}

        def work(session: Session) -> dict[tuple[str, str], IndicatorView]:
            found: dict[tuple[str, str], IndicatorView] = {}
            hashes = sorted(by_hash)
            for start in range(0, len(hashes), _IN_CHUNK):
                chunk = hashes[start : start + _IN_CHUNK]
                rows = session.execute(
                    sa.select(Indicator).where(Indicator.value_hash.in_(chunk))
                ).scalars()
                for row in rows:
                    found[by_hash[row.value_hash]] = indicator_view(row)
            return found

        return self.run_in(work, write=False)

    def set_indicator_status(
        self, kind: str, value: str, status: str, actor: str, *, note: str | None = None
    ) -> IndicatorView:
        """Staff's decision on an indicator (created if no report had it yet); audited."""
        _one_of("indicator kind", kind, sorted(INDICATOR_KINDS))
        _one_of("indicator status", status, INDICATOR_STATUSES)
        if not value:
            raise ValueError("an indicator needs a value")
        value_hash = indicator_hash(kind, value)

        def work(session: Session) -> IndicatorView:
            now = utcnow()
            session.execute(
                self._insert(Indicator)
                .values(
                    kind=kind,
                    value=value,
                    value_hash=value_hash,
                    masked=ind.mask(kind, value),
                    status="suspected",
                    seen_count=0,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                .on_conflict_do_nothing(index_elements=["value_hash"])
            )
            row = session.execute(
                sa.select(Indicator)
                .where(Indicator.value_hash == value_hash)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).scalar_one()
            before = row.status
            row.status = status
            if note is not None:
                row.note = note
            if status == "confirmed":
                if before != "confirmed":
                    row.confirmed_at = now
                    row.confirmed_by = user_id_of(actor)
            else:
                row.confirmed_at = None
                row.confirmed_by = None
            details = {"kind": kind, "masked": row.masked, "from": before, "to": status}
            self._audit(session, actor, "indicator.status", "indicator", row.id, details)
            session.flush()
            return indicator_view(row)

        return self.run_in(work, write=True)

    # Alerts

    def add_alert(self, report_id: int, message: str) -> AlertView:
        """An urgent alert about a report, for the leaders of the resident's (or chat's) area."""

        def work(session: Session) -> AlertView:
            report = session.get(Report, report_id)
            if report is None:
                raise NotFound(f"no report {report_id}")
            area_id = report.resident.area_id if report.resident is not None else None
            if area_id is None and report.chat_id is not None:
                chat = session.get(Chat, report.chat_id)
                area_id = chat.area_id if chat is not None else None
            alert = Alert(
                kind="urgent",
                report_id=report_id,
                resident_id=report.resident_id,
                area_id=area_id,
                message=message,
                status="pending",
                attempts=0,
                created_at=utcnow(),
            )
            session.add(alert)
            session.flush()
            return alert_view(alert)

        return self.run_in(work, write=True)

    def pending_alerts(self, limit: int = 100) -> list[AlertView]:
        """Alerts still to deliver, oldest first."""

        def work(session: Session) -> list[AlertView]:
            rows = session.execute(
                sa.select(Alert)
                .where(Alert.status == "pending")
                .order_by(Alert.created_at, Alert.id)
                .limit(limit)
            ).scalars()
            return [alert_view(a) for a in rows]

        return self.run_in(work, write=False)

    def mark_alert(self, alert_id: int, delivered: bool, error: str | None = None) -> AlertView:
        """Record a delivery attempt; after ``ALERT_MAX_ATTEMPTS`` failures the alert is failed."""

        def work(session: Session) -> AlertView:
            alert = session.execute(
                sa.select(Alert)
                .where(Alert.id == alert_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).scalar_one_or_none()
            if alert is None:
                raise NotFound(f"no alert {alert_id}")
            alert.attempts += 1
            if delivered:
                alert.status = "delivered"
                alert.delivered_at = utcnow()
            else:
                alert.last_error = _clip(error)
                alert.status = "failed" if alert.attempts >= ALERT_MAX_ATTEMPTS else "pending"
            session.flush()
            return alert_view(alert)

        return self.run_in(work, write=True)

    # Inbox

    def inbox_put(
        self,
        sender_id: str,
        channel: str,
        text: str,
        *,
        chat_external_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> int:
        """Keep an incoming message before anything else happens to it; returns its id."""

        def work(session: Session) -> int:
            table = InboundMessage.__table__
            stmt = (
                sa.insert(table)
                .values(
                    sender_id=sender_id,
                    channel=channel,
                    chat_external_id=chat_external_id,
                    text=text,
                    payload=dict(payload or {}),
                    received_at=utcnow(),
                    status="pending",
                    attempts=0,
                )
                .returning(table.c.id)
            )
            return int(session.execute(stmt).scalar_one())

        return self.run_in(work, write=True)

    def inbox_claim(self, limit: int = 20) -> list[InboundView]:
        """Take up to ``limit`` pending messages, oldest first; no two callers get the same."""

        def work(session: Session) -> list[InboundView]:
            table = InboundMessage.__table__
            oldest = (
                sa.select(table.c.id)
                .where(table.c.status == "pending")
                .order_by(table.c.received_at, table.c.id)
                .limit(limit)
            )
            if self.dialect == "postgresql":
                # Rows another worker is claiming are skipped, not waited for; the ones
                # selected here stay locked until this transaction ends.
                oldest = oldest.with_for_update(skip_locked=True)
            ids = list(session.execute(oldest).scalars())
            if not ids:
                return []
            rows = session.execute(
                sa.update(table)
                .where(table.c.id.in_(ids), table.c.status == "pending")
                .values(status="processing", claimed_at=utcnow())
                .returning(*table.c)
            ).all()
            return sorted((inbound_view(r) for r in rows), key=lambda m: (m.received_at, m.id))

        return self.run_in(work, write=True)

    def inbox_claim_one(self, message_id: int) -> InboundView | None:
        """Take one message if it is still pending; ``None`` if another worker has it."""

        def work(session: Session) -> InboundView | None:
            table = InboundMessage.__table__
            # A concurrent claimer waits for this row lock, then finds the status changed.
            row = session.execute(
                sa.update(table)
                .where(table.c.id == message_id, table.c.status == "pending")
                .values(status="processing", claimed_at=utcnow())
                .returning(*table.c)
            ).first()
            return None if row is None else inbound_view(row)

        return self.run_in(work, write=True)

    def _inbox_update(self, message_id: int, **values: Any) -> None:
        def work(session: Session) -> None:
            table = InboundMessage.__table__
            result = session.execute(
                sa.update(table).where(table.c.id == message_id).values(**values)
            )
            if result.rowcount == 0:
                raise NotFound(f"no inbound message {message_id}")

        self.run_in(work, write=True)

    def inbox_done(self, message_id: int, replies: list[dict[str, Any]]) -> None:
        """The message was answered; ``replies`` are what the bot sent back."""
        self._inbox_update(message_id, status="done", processed_at=utcnow(), replies=list(replies))

    def inbox_forget_text(self, message_id: int) -> None:
        """Blank a processed message's text: a group message found ordinary is not kept."""
        self._inbox_update(message_id, text="", payload={"forgotten": True})

    def inbox_retry(self, message_id: int, error: str) -> None:
        """Processing failed; the message goes back to pending with the error noted."""
        table = InboundMessage.__table__
        self._inbox_update(
            message_id,
            status="pending",
            attempts=table.c.attempts + 1,
            last_error=_clip(error),
            claimed_at=None,
        )

    def inbox_fail(self, message_id: int, error: str) -> None:
        """Give up on a message (e.g. after too many attempts); it stays for inspection."""
        table = InboundMessage.__table__
        self._inbox_update(
            message_id,
            status="failed",
            attempts=table.c.attempts + 1,
            last_error=_clip(error),
            processed_at=utcnow(),
        )

    def inbox_get(self, message_id: int) -> InboundView | None:
        def work(session: Session) -> InboundView | None:
            row = session.get(InboundMessage, message_id)
            return None if row is None else inbound_view(row)

        return self.run_in(work, write=False)

    def inbox_pending_count(self) -> int:
        def work(session: Session) -> int:
            query = sa.select(sa.func.count()).where(InboundMessage.status == "pending")
            return int(session.execute(query).scalar_one())

        return self.run_in(work, write=False)

    def inbox_requeue_stale(self, older_than_seconds: float) -> int:
        """Put back messages claimed longer ago than that (left by a crashed worker)."""

        def work(session: Session) -> int:
            table = InboundMessage.__table__
            cutoff = utcnow() - timedelta(seconds=older_than_seconds)
            result = session.execute(
                sa.update(table)
                .where(table.c.status == "processing", table.c.claimed_at < cutoff)
                .values(status="pending", claimed_at=None)
            )
            return int(result.rowcount)

        return self.run_in(work, write=True)

    # Audit

    def audit(
        self,
        actor: str,
        action: str,
        target_type: str,
        target_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Write an audit-log line; ``details`` must not hold raw personal data."""
        return self.run_in(
            lambda session: self._audit(session, actor, action, target_type, target_id, details),
            write=True,
        )

    # Areas, staff, chats

    def add_area(self, level: str, name: str, parent_id: int | None = None) -> AreaView:
        """A community (no parent), a grid (in a community) or a building (in a grid)."""
        _one_of("level", level, AREA_LEVELS)
        expected_parent = {"community": None, "grid": "community", "building": "grid"}[level]

        def work(session: Session) -> AreaView:
            if parent_id is None:
                if expected_parent is not None:
                    raise ValueError(f"a {level} needs a parent {expected_parent}")
            else:
                parent = session.get(Area, parent_id)
                if parent is None:
                    raise NotFound(f"no area {parent_id}")
                if parent.level != expected_parent:
                    wanted = f"a {expected_parent}" if expected_parent else "no parent"
                    raise ValueError(f"a {level}'s parent must be {wanted}, not a {parent.level}")
            sibling = session.execute(
                sa.select(Area.id).where(
                    Area.name == name,
                    Area.parent_id.is_(None) if parent_id is None else Area.parent_id == parent_id,
                )
            ).first()
            if sibling is not None:
                raise ValueError(f"an area named {name!r} already exists there")
            area = Area(parent_id=parent_id, level=level, name=name, created_at=utcnow())
            session.add(area)
            try:
                session.flush()
            except IntegrityError as exc:
                raise ValueError(f"an area named {name!r} already exists there") from exc
            return area_view(area)

        return self.run_in(work, write=True)

    def add_user(
        self,
        username: str,
        role: str,
        display_name: str | None = None,
        telegram_user_id: int | None = None,
    ) -> UserView:
        """A staff account (no password yet)."""
        _one_of("role", role, USER_ROLES)

        def work(session: Session) -> UserView:
            user = User(
                username=username,
                role=role,
                display_name=display_name,
                telegram_user_id=telegram_user_id,
                active=True,
                created_at=utcnow(),
            )
            session.add(user)
            try:
                session.flush()
            except IntegrityError as exc:
                raise ValueError(
                    f"a user named {username!r} or with that Telegram id exists"
                ) from exc
            return user_view(user)

        return self.run_in(work, write=True)

    def add_leader(self, area_id: int, user_id: int) -> None:
        """Make a user a leader of an area (again: no change)."""

        def work(session: Session) -> None:
            if session.get(Area, area_id) is None:
                raise NotFound(f"no area {area_id}")
            if session.get(User, user_id) is None:
                raise NotFound(f"no user {user_id}")
            session.execute(
                self._insert(AreaLeader)
                .values(area_id=area_id, user_id=user_id)
                .on_conflict_do_nothing(index_elements=["area_id", "user_id"])
            )

        self.run_in(work, write=True)

    def leaders_for_area(self, area_id: int) -> list[UserView]:
        """The active leaders of an area and of the areas above it, nearest first."""

        def work(session: Session) -> list[UserView]:
            chain: list[int] = []
            current: int | None = area_id
            while current is not None and current not in chain and len(chain) < 16:
                chain.append(current)
                current = session.execute(
                    sa.select(Area.parent_id).where(Area.id == current)
                ).scalar_one_or_none()
            rows = session.execute(
                sa.select(AreaLeader.area_id, User)
                .join(User, User.id == AreaLeader.user_id)
                .where(AreaLeader.area_id.in_(chain), User.active.is_(True))
            ).all()
            ordered = sorted(rows, key=lambda r: (chain.index(r[0]), r[1].id))
            seen: set[int] = set()
            leaders = []
            for _area, user in ordered:
                if user.id not in seen:
                    seen.add(user.id)
                    leaders.append(user_view(user))
            return leaders

        return self.run_in(work, write=False)

    def upsert_chat(
        self, channel: str, external_id: str, kind: str, title: str | None = None
    ) -> ChatView:
        """Record a chat the bot is in (kind and title updated if it is known)."""
        _one_of("chat kind", kind, CHAT_KINDS)

        def work(session: Session) -> ChatView:
            table = Chat.__table__
            stmt = self._insert(Chat).values(
                channel=channel,
                external_id=external_id,
                kind=kind,
                title=title,
                tags=[],
                created_at=utcnow(),
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["channel", "external_id"],
                set_={
                    "kind": stmt.excluded.kind,
                    "title": sa.func.coalesce(stmt.excluded.title, table.c.title),
                },
            ).returning(table.c.id)
            chat_id = session.execute(stmt).scalar_one()
            chat = self._fresh(session, Chat, chat_id)
            assert chat is not None
            return chat_view(chat)

        return self.run_in(work, write=True)

    def set_chat_area(self, channel: str, external_id: str, area_id: int | None) -> ChatView:
        """Which area a chat (a grid group) belongs to."""

        def work(session: Session) -> ChatView:
            chat = session.execute(
                sa.select(Chat).where(Chat.channel == channel, Chat.external_id == external_id)
            ).scalar_one_or_none()
            if chat is None:
                raise NotFound(f"no chat {external_id!r} on {channel!r}")
            if area_id is not None and session.get(Area, area_id) is None:
                raise NotFound(f"no area {area_id}")
            chat.area_id = area_id
            session.flush()
            return chat_view(chat)

        return self.run_in(work, write=True)
