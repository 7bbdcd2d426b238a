"""The tables of the store, as typed SQLAlchemy 2.0 models.

The migrations in ``migrations/versions`` create exactly these tables (a test compares them with
Alembic's autogenerate). Constraint names come from one naming convention so that Alembic can
find and alter them later, including in batch mode on SQLite, which names nothing itself.
Enumerations are ``CHECK`` constraints over short strings rather than database enums: they read
the same on both databases and a new value is a one-line migration.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.store.types import Money, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AREA_LEVELS = ("community", "grid", "building")
USER_ROLES = ("admin", "staff", "grid_leader")
CHAT_KINDS = ("private", "group")
INBOX_STATUSES = ("pending", "processing", "done", "failed")
REPORT_SOURCES = ("check", "report_form", "urgent", "group_auto")
RISKS = ("high", "medium", "low")
REPORT_STATUSES = ("new", "assigned", "in_review", "confirmed", "dismissed", "answered")
INDICATOR_STATUSES = ("suspected", "confirmed", "dismissed")
ALERT_KINDS = ("urgent",)
ALERT_STATUSES = ("pending", "delivered", "failed")
OUTBOX_PURPOSES = ("reply", "warning", "alert", "answer")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")
SCHEDULE_KINDS = ("once", "recurring", "peak")
CAMPAIGN_STATUSES = ("active", "paused", "ended", "cancelled")
OCCURRENCE_STATUSES = ("planned", "missed")
DELIVERY_STATUSES = ("queued", "sending", "sent", "failed", "skipped")


def _one_of(column: str, values: tuple[str, ...], name: str | None = None) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=name or column)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON(),
        list[str]: sa.JSON(),
        list[dict[str, Any]]: sa.JSON(),
    }


class Area(Base):
    """A place in the grid: a community (社区), one of its grids (网格) or a building (楼栋)."""

    __tablename__ = "areas"
    __table_args__ = (
        _one_of("level", AREA_LEVELS),
        sa.UniqueConstraint("parent_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    level: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A staff account: administrators, community staff and grid leaders."""

    __tablename__ = "users"
    __table_args__ = (_one_of("role", USER_ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(128))
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    telegram_user_id: Mapped[int | None] = mapped_column(sa.BigInteger, unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The dashboard's login: failures in a row lock the account for a while.
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the store only its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))


class AreaLeader(Base):
    """A grid leader responsible for an area (and, through the tree, for what lies below it)."""

    __tablename__ = "area_leaders"

    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)


class Resident(Base):
    """Someone who talks to the bot, known by the conversation id Rasa uses."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(32))
    display_name: Mapped[str | None] = mapped_column(sa.String(128))
    age_group: Mapped[str | None] = mapped_column(sa.String(32))
    profile_consent_at: Mapped[datetime | None]
    subscribed: Mapped[bool] = mapped_column(default=False)
    subscribed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Chat(Base):
    """A private chat or a group the bot is in, on one channel."""

    __tablename__ = "chats"
    __table_args__ = (
        _one_of("kind", CHAT_KINDS),
        sa.UniqueConstraint("channel", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(32))
    external_id: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))
    title: Mapped[str | None] = mapped_column(sa.String(255))
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    tags: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by the grid leader who registered the group to its place in the grid.
    registered_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    registered_at: Mapped[datetime | None]
    # The group asked for no campaign pushes (warnings about scams posted in it still come).
    campaigns_opt_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None]


class InboundMessage(Base):
    """The store-first inbox: a resident's message, written before it goes on to Rasa."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        _one_of("status", INBOX_STATUSES),
        sa.Index(None, "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[str] = mapped_column(sa.String(128))
    channel: Mapped[str] = mapped_column(sa.String(32))
    chat_external_id: Mapped[str | None] = mapped_column(sa.String(64))
    text: Mapped[str] = mapped_column(sa.Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    claimed_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    replies: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)


class Report(Base):
    """A message a resident asked about or reported, with the model's verdict and staff's."""

    __tablename__ = "reports"
    __table_args__ = (
        _one_of("source", REPORT_SOURCES),
        _one_of("risk", RISKS),
        _one_of("status", REPORT_STATUSES),
        sa.Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(sa.ForeignKey("residents.id"), index=True)
    chat_id: Mapped[int | None] = mapped_column(sa.ForeignKey("chats.id"))
    inbound_message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("inbound_messages.id"))
    source: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str] = mapped_column(sa.Text)
    text_masked: Mapped[str] = mapped_column(sa.Text)
    normalized: Mapped[str] = mapped_column(sa.Text)
    text_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    scam_type: Mapped[str] = mapped_column(sa.String(32))
    confidence: Mapped[float] = mapped_column(sa.Float)
    risk: Mapped[str] = mapped_column(sa.String(8))
    intent: Mapped[str | None] = mapped_column(sa.String(64))
    red_flags: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    money_lost: Mapped[bool | None]
    amount: Mapped[Decimal | None] = mapped_column(Money())
    happened_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(sa.String(16), default="new")
    assigned_to: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    verdict_scam_type: Mapped[str | None] = mapped_column(sa.String(32))
    verdict_note: Mapped[str | None] = mapped_column(sa.Text)
    reviewed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    resident: Mapped[Resident | None] = relationship(lazy="selectin")
    events: Mapped[list[ReportEvent]] = relationship(
        order_by="(ReportEvent.at, ReportEvent.id)", lazy="selectin"
    )
    indicators: Mapped[list[Indicator]] = relationship(
        secondary="report_indicators", order_by="Indicator.id", lazy="selectin"
    )


class ReportEvent(Base):
    """One move in a report's status history."""

    __tablename__ = "report_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("reports.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    actor: Mapped[str] = mapped_column(sa.String(64))
    note: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportNote(Base):
    """A staff member's note on a report, kept beside its status history."""

    __tablename__ = "report_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("reports.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportMinhashBand(Base):
    """The LSH bands of a report's normalised text, for near-duplicate candidates."""

    __tablename__ = "report_minhash_bands"
    __table_args__ = (sa.Index(None, "band", "bucket"),)

    report_id: Mapped[int] = mapped_column(sa.ForeignKey("reports.id"), primary_key=True)
    band: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(sa.BigInteger)


class Indicator(Base):
    """A phone, link, account, card or app seen in reports, and what staff decided about it."""

    __tablename__ = "indicators"
    __table_args__ = (_one_of("status", INDICATOR_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[str] = mapped_column(sa.Text)
    value_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    masked: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="suspected")
    seen_count: Mapped[int] = mapped_column(default=0)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.Text)


class ReportIndicator(Base):
    """Which indicators a report contained."""

    __tablename__ = "report_indicators"

    report_id: Mapped[int] = mapped_column(sa.ForeignKey("reports.id"), primary_key=True)
    indicator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("indicators.id"), primary_key=True, index=True
    )


class Alert(Base):
    """A message to the grid leaders about an urgent report, delivered by the bot."""

    __tablename__ = "alerts"
    __table_args__ = (
        _one_of("kind", ALERT_KINDS),
        _one_of("status", ALERT_STATUSES),
        sa.Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default="urgent")
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("reports.id"))
    resident_id: Mapped[int | None] = mapped_column(sa.ForeignKey("residents.id"))
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    message: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class OutboundMessage(Base):
    """The outbox: a message the bot is to send, written before it is sent, kept after."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        _one_of("purpose", OUTBOX_PURPOSES),
        _one_of("status", OUTBOX_STATUSES),
        sa.Index(None, "status", "next_attempt_at"),
        sa.Index(None, "chat_external_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(32), default="telegram")
    chat_external_id: Mapped[str] = mapped_column(sa.String(64))
    text: Mapped[str] = mapped_column(sa.Text)
    reply_markup: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    reply_to: Mapped[int | None] = mapped_column(sa.BigInteger)
    purpose: Mapped[str] = mapped_column(sa.String(16), default="reply")
    # Set for a message that must go out once only (an alert to one leader, a reporter's answer).
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    external_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)


class AuditLog(Base):
    """Who did what to which record; details never hold raw indicator values."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str] = mapped_column(sa.String(32))
    target_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CaseImport(Base):
    """One run of ``antifraud cases import``: which file, by whom, and what it added."""

    __tablename__ = "case_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(sa.String(255))
    file_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    actor: Mapped[str] = mapped_column(sa.String(64))
    rows: Mapped[int] = mapped_column(default=0)
    added: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    incomplete: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """A fraud case from police or town case data: when it happened, what kind, to whom, where.

    ``row_key`` identifies the case across imports (the case number when the file has one, else
    a hash of the row's content), so importing a file again adds nothing. ``missing`` lists the
    fields that could not be read (from a narrative, say) for a person to complete.
    """

    __tablename__ = "cases"
    __table_args__ = (sa.Index(None, "scam_type", "happened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(sa.ForeignKey("case_imports.id"), index=True)
    row_number: Mapped[int]
    row_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    case_number: Mapped[str | None] = mapped_column(sa.String(64))
    happened_at: Mapped[datetime | None]
    scam_type: Mapped[str | None] = mapped_column(sa.String(32))
    # "given" (a column of the file) or "classifier" (read from the narrative by the model).
    scam_type_source: Mapped[str | None] = mapped_column(sa.String(16))
    loss: Mapped[Decimal | None] = mapped_column(Money())
    age_group: Mapped[str | None] = mapped_column(sa.String(32))
    gender: Mapped[str | None] = mapped_column(sa.String(8))
    occupation: Mapped[str | None] = mapped_column(sa.String(64))
    place: Mapped[str | None] = mapped_column(sa.String(255))
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    narrative: Mapped[str | None] = mapped_column(sa.Text)
    # The audiences the victim belongs to (``campaigns.audience``), worked out at import.
    audiences: Mapped[list[str]] = mapped_column(default=list)
    missing: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    """Anti-fraud messages a grid leader pushes to the groups of part of the grid.

    ``schedule`` holds what ``schedule_kind`` needs: ``{"at": ISO time}`` for once,
    ``{"weekdays": [0-6], "times": ["HH:MM"]}`` for recurring (Monday is 0), and
    ``{"lead_minutes": N}`` for peak (that long before each peak window of ``scam_types``).
    Times of day are Asia/Shanghai; stored instants are UTC.
    """

    __tablename__ = "campaigns"
    __table_args__ = (
        _one_of("schedule_kind", SCHEDULE_KINDS),
        _one_of("status", CAMPAIGN_STATUSES),
        sa.Index(None, "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    audience_tags: Mapped[list[str]] = mapped_column(default=list)
    scam_types: Mapped[list[str]] = mapped_column(default=list)
    template_key: Mapped[str | None] = mapped_column(sa.String(64))
    text: Mapped[str | None] = mapped_column(sa.Text)
    schedule_kind: Mapped[str] = mapped_column(sa.String(16))
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))
    weekly_budget: Mapped[int] = mapped_column(default=3)
    grace_minutes: Mapped[int] = mapped_column(default=60)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignOccurrence(Base):
    """One due time of a campaign, recorded once: planned (its deliveries made) or missed."""

    __tablename__ = "campaign_occurrences"
    __table_args__ = (
        _one_of("status", OCCURRENCE_STATUSES),
        sa.UniqueConstraint("campaign_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16))
    # For a peak-time occurrence: the peak window it comes before.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    planned_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignDelivery(Base):
    """One push of one occurrence to one group: queued, then sent, failed (why) or skipped (why).

    The unique (occurrence, chat) pair is what makes each push happen at most once; a delivery
    found ``sending`` after a crash is never sent again (it may have arrived) but failed with
    that reason.
    """

    __tablename__ = "campaign_deliveries"
    __table_args__ = (
        _one_of("status", DELIVERY_STATUSES),
        sa.UniqueConstraint("occurrence_id", "chat_id"),
        sa.Index(None, "status", "next_attempt_at"),
        sa.Index(None, "chat_id", "status", "sent_at"),
        sa.Index(None, "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"))
    occurrence_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign_occurrences.id"))
    chat_id: Mapped[int] = mapped_column(sa.ForeignKey("chats.id"))
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    external_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
