"""Views from ORM rows (and ``RETURNING`` rows), built while the session is still open."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.store.models import Alert, Area, Chat, Report, ReportEvent, Resident, User
from bot.store.views import (
    AlertView,
    AreaView,
    ChatView,
    EventView,
    InboundView,
    IndicatorView,
    ReportView,
    ResidentView,
    UserView,
)


def resident_view(r: Resident) -> ResidentView:
    return ResidentView(
        id=r.id,
        sender_id=r.sender_id,
        channel=r.channel,
        display_name=r.display_name,
        age_group=r.age_group,
        profile_consent_at=r.profile_consent_at,
        subscribed=r.subscribed,
        subscribed_at=r.subscribed_at,
        unsubscribed_at=r.unsubscribed_at,
        area_id=r.area_id,
        created_at=r.created_at,
        last_seen_at=r.last_seen_at,
    )


def area_view(a: Area) -> AreaView:
    return AreaView(
        id=a.id, parent_id=a.parent_id, level=a.level, name=a.name, created_at=a.created_at
    )


def user_view(u: User) -> UserView:
    return UserView(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        telegram_user_id=u.telegram_user_id,
        active=u.active,
        has_password=u.password_hash is not None,
        created_at=u.created_at,
    )


def chat_view(c: Chat) -> ChatView:
    return ChatView(
        id=c.id,
        channel=c.channel,
        external_id=c.external_id,
        kind=c.kind,
        title=c.title,
        area_id=c.area_id,
        tags=tuple(c.tags or ()),
        created_at=c.created_at,
        registered_by=c.registered_by,
        registered_at=c.registered_at,
        campaigns_opt_out=bool(c.campaigns_opt_out),
    )


def inbound_view(m: Any) -> InboundView:
    """From an ORM row or a ``RETURNING`` row (same attribute names)."""
    return InboundView(
        id=m.id,
        sender_id=m.sender_id,
        channel=m.channel,
        chat_external_id=m.chat_external_id,
        text=m.text,
        payload=dict(m.payload or {}),
        received_at=m.received_at,
        status=m.status,
        attempts=m.attempts,
        last_error=m.last_error,
        claimed_at=m.claimed_at,
        processed_at=m.processed_at,
        replies=None if m.replies is None else list(m.replies),
    )


def event_view(e: ReportEvent) -> EventView:
    return EventView(
        id=e.id,
        report_id=e.report_id,
        from_status=e.from_status,
        to_status=e.to_status,
        actor=e.actor,
        note=e.note,
        at=e.at,
    )


def indicator_view(i: Any) -> IndicatorView:
    """From an ORM row or a ``RETURNING`` row (same attribute names)."""
    return IndicatorView(
        id=i.id,
        kind=i.kind,
        value=i.value,
        value_hash=i.value_hash,
        masked=i.masked,
        status=i.status,
        seen_count=i.seen_count,
        first_seen_at=i.first_seen_at,
        last_seen_at=i.last_seen_at,
        confirmed_at=i.confirmed_at,
        confirmed_by=i.confirmed_by,
        note=i.note,
    )


def report_view(
    r: Report,
    *,
    sender_id: str | None = None,
    indicators: Iterable[IndicatorView] | None = None,
    events: Iterable[ReportEvent] | None = None,
) -> ReportView:
    """The view of a loaded report; a new one passes what it just wrote instead of loading it."""
    if sender_id is None and r.resident is not None:
        sender_id = r.resident.sender_id
    return ReportView(
        id=r.id,
        sender_id=sender_id,
        resident_id=r.resident_id,
        chat_id=r.chat_id,
        inbound_message_id=r.inbound_message_id,
        source=r.source,
        text=r.text,
        text_masked=r.text_masked,
        normalized=r.normalized,
        text_hash=r.text_hash,
        scam_type=r.scam_type,
        confidence=r.confidence,
        risk=r.risk,
        intent=r.intent,
        red_flags=[dict(flag) for flag in r.red_flags or ()],
        details=dict(r.details or {}),
        money_lost=r.money_lost,
        amount=r.amount,
        happened_at=r.happened_at,
        status=r.status,
        assigned_to=r.assigned_to,
        verdict_scam_type=r.verdict_scam_type,
        verdict_note=r.verdict_note,
        reviewed_by=r.reviewed_by,
        reviewed_at=r.reviewed_at,
        answered_at=r.answered_at,
        created_at=r.created_at,
        updated_at=r.updated_at,
        indicators=tuple(
            indicators if indicators is not None else (indicator_view(i) for i in r.indicators)
        ),
        events=tuple(event_view(e) for e in (events if events is not None else r.events)),
    )


def alert_view(a: Alert) -> AlertView:
    return AlertView(
        id=a.id,
        kind=a.kind,
        report_id=a.report_id,
        resident_id=a.resident_id,
        area_id=a.area_id,
        message=a.message,
        status=a.status,
        attempts=a.attempts,
        last_error=a.last_error,
        created_at=a.created_at,
        delivered_at=a.delivered_at,
    )
