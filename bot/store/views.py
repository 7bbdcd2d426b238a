"""The plain values the store takes and gives: frozen dataclasses, never ORM objects.

A view is built inside the transaction that read it and stays valid after the session is gone,
so callers (the action server, the bot, the dashboard) never touch a lazy load or a detached
instance. Fields holding a resident's own words or an indicator's raw value are left out of
``repr()``, so that logging a view by mistake does not log personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class NewReport:
    """What the bot knows about a message when it files a report.

    ``indicators`` holds ``(kind, value, masked)`` triples as the extractor gives them.
    ``to_dict``/``from_dict`` give a JSON-safe form for the spool (amount and datetime as text).
    """

    sender_id: str
    channel: str
    text: str = field(repr=False)
    text_masked: str
    normalized: str = field(repr=False)
    source: str
    scam_type: str
    confidence: float
    risk: str
    intent: str | None = None
    red_flags: list[dict[str, Any]] = field(default_factory=list, repr=False)
    indicators: list[tuple[str, str, str]] = field(default_factory=list, repr=False)
    chat_external_id: str | None = None
    inbound_message_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict, repr=False)
    money_lost: bool | None = None
    amount: Decimal | None = None
    happened_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["red_flags"] = [dict(flag) for flag in self.red_flags]
        data["indicators"] = [list(triple) for triple in self.indicators]
        data["details"] = dict(self.details)
        data["amount"] = None if self.amount is None else str(self.amount)
        data["happened_at"] = None if self.happened_at is None else self.happened_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewReport:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown NewReport fields: {', '.join(unknown)}")
        values = dict(data)
        values["indicators"] = [
            (str(kind), str(value), str(masked))
            for kind, value, masked in values.get("indicators") or []
        ]
        values["red_flags"] = [dict(flag) for flag in values.get("red_flags") or []]
        values["details"] = dict(values.get("details") or {})
        if values.get("amount") is not None:
            values["amount"] = Decimal(str(values["amount"]))
        if values.get("happened_at") is not None:
            happened = values["happened_at"]
            values["happened_at"] = (
                happened if isinstance(happened, datetime) else datetime.fromisoformat(happened)
            )
        return cls(**values)


@dataclass(frozen=True)
class ResidentView:
    id: int
    sender_id: str
    channel: str
    display_name: str | None
    age_group: str | None
    profile_consent_at: datetime | None
    subscribed: bool
    subscribed_at: datetime | None
    unsubscribed_at: datetime | None
    area_id: int | None
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class AreaView:
    id: int
    parent_id: int | None
    level: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class UserView:
    """A staff account; the password hash never leaves the store."""

    id: int
    username: str
    display_name: str | None
    role: str
    telegram_user_id: int | None
    active: bool
    has_password: bool
    created_at: datetime


@dataclass(frozen=True)
class ChatView:
    id: int
    channel: str
    external_id: str
    kind: str
    title: str | None
    area_id: int | None
    tags: tuple[str, ...]
    created_at: datetime
    registered_by: int | None = None
    registered_at: datetime | None = None
    campaigns_opt_out: bool = False


@dataclass(frozen=True)
class InboundView:
    id: int
    sender_id: str
    channel: str
    chat_external_id: str | None
    text: str = field(repr=False)
    payload: dict[str, Any] = field(repr=False)
    received_at: datetime
    status: str
    attempts: int
    last_error: str | None
    claimed_at: datetime | None
    processed_at: datetime | None
    replies: list[dict[str, Any]] | None = field(repr=False)


@dataclass(frozen=True)
class EventView:
    id: int
    report_id: int
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    at: datetime


@dataclass(frozen=True)
class IndicatorView:
    id: int
    kind: str
    value: str = field(repr=False)
    value_hash: str
    masked: str
    status: str
    seen_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    confirmed_at: datetime | None
    confirmed_by: int | None
    note: str | None


@dataclass(frozen=True)
class ReportView:
    """A report with its status history (oldest first) and its indicators."""

    id: int
    sender_id: str | None
    resident_id: int | None
    chat_id: int | None
    inbound_message_id: int | None
    source: str
    text: str = field(repr=False)
    text_masked: str
    normalized: str = field(repr=False)
    text_hash: str
    scam_type: str
    confidence: float
    risk: str
    intent: str | None
    red_flags: list[dict[str, Any]] = field(repr=False)
    details: dict[str, Any] = field(repr=False)
    money_lost: bool | None
    amount: Decimal | None
    happened_at: datetime | None
    status: str
    assigned_to: int | None
    verdict_scam_type: str | None
    verdict_note: str | None
    reviewed_by: int | None
    reviewed_at: datetime | None
    answered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    indicators: tuple[IndicatorView, ...]
    events: tuple[EventView, ...]


@dataclass(frozen=True)
class SeenBefore:
    """A reviewed report whose text is the same as, or close to, a new message's.

    ``verdict`` is ``"confirmed"`` (a scam, of type ``scam_type``) or ``"dismissed"`` (not a
    scam, ``scam_type`` is ``"not_scam"``); ``match`` is ``"exact"`` or ``"near"``.
    ``times_reported`` counts every report of the same or a near text, whatever its status.
    """

    report_id: int
    verdict: str
    scam_type: str
    match: str
    similarity: float
    times_reported: int


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    report_id: int
    resident_id: int | None
    area_id: int | None
    message: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class NewOutbound:
    """A message for the outbox."""

    chat_external_id: str
    text: str = field(repr=False)
    purpose: str = "reply"
    reply_markup: dict[str, Any] | None = field(default=None, repr=False)
    reply_to: int | None = None
    dedupe_key: str | None = None
    channel: str = "telegram"


@dataclass(frozen=True)
class OutboundView:
    id: int
    channel: str
    chat_external_id: str
    text: str = field(repr=False)
    reply_markup: dict[str, Any] | None = field(repr=False)
    reply_to: int | None
    purpose: str
    dedupe_key: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    external_message_id: int | None
