"""Campaigns in the store: what grid leaders set up, each due time, and every push to a group.

A campaign's due times (occurrences) are recorded once each (unique per campaign and time).
Planning an occurrence writes, in the same transaction, one delivery per targeted group:
``queued``, or ``skipped`` with the reason (the group opted out, the time is in the campaign's
quiet hours, the group has had its week's budget of pushes, or the occurrence was missed while
the bot was down beyond its grace time). Deliveries are then claimed (``sending``), and marked
``sent`` or ``failed`` (why), or put back for a retry. The unique (occurrence, group) pair makes
a push happen at most once; a delivery left ``sending`` by a process that died is failed as
interrupted and never sent again, because it may have arrived.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from bot.store.errors import NotFound
from bot.store.grid import path_label, subtree_ids
from bot.store.models import (
    CAMPAIGN_STATUSES,
    DELIVERY_STATUSES,
    SCHEDULE_KINDS,
    Area,
    AreaLeader,
    Campaign,
    CampaignDelivery,
    CampaignOccurrence,
    Chat,
    User,
)
from bot.store.types import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
ERROR_MAX_CHARS = 1000
BUDGET_WINDOW = timedelta(days=7)
# Deliveries that count against a group's weekly budget (sent, or on their way).
_COUNTED = ("queued", "sending", "sent")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_DELIVERY_PAGE = 500


class CampaignMoveError(ValueError):
    """A campaign cannot move to the status asked for (cancelled and ended are final)."""


# Which status a campaign may move to from which (cancelled is final).
CAMPAIGN_MOVES = {
    "active": ("paused", "cancelled", "ended"),
    "paused": ("active", "cancelled", "ended"),
    # no more due times, but pushes of the last may still wait: cancelling stops them
    "ended": ("cancelled",),
}

# Skip reasons, as stored and as counted in reports.
OPTED_OUT = "opted_out"
QUIET_HOURS = "quiet_hours"
BUDGET = "budget"
MISSED = "missed"
INTERRUPTED = "interrupted while sending; not sent again in case it arrived"
EXPIRED = "expired"


@dataclass(frozen=True)
class NewCampaign:
    name: str
    area_id: int
    schedule_kind: str
    schedule: dict[str, Any]
    starts_at: datetime
    ends_at: datetime | None = None
    audience_tags: tuple[str, ...] = ()
    scam_types: tuple[str, ...] = ()
    template_key: str | None = None
    text: str | None = field(default=None, repr=False)
    quiet_start: str | None = "22:00"
    quiet_end: str | None = "07:00"
    weekly_budget: int = 3
    grace_minutes: int = 60


@dataclass(frozen=True)
class CampaignView:
    id: int
    name: str
    created_by: int | None
    area_id: int
    audience_tags: tuple[str, ...]
    scam_types: tuple[str, ...]
    template_key: str | None
    text: str | None = field(repr=False)
    schedule_kind: str
    schedule: dict[str, Any]
    starts_at: datetime
    ends_at: datetime | None
    quiet_start: str | None
    quiet_end: str | None
    weekly_budget: int
    grace_minutes: int
    status: str
    created_at: datetime
    last_due_at: datetime | None = None

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.grace_minutes)

    def in_quiet_hours(self, at: datetime) -> bool:
        """Whether ``at`` falls in the quiet hours (Asia/Shanghai), which may span midnight."""
        if not self.quiet_start or not self.quiet_end or self.quiet_start == self.quiet_end:
            return False
        local = at.astimezone(SHANGHAI).time()
        start, end = time.fromisoformat(self.quiet_start), time.fromisoformat(self.quiet_end)
        if start < end:
            return start <= local < end
        return local >= start or local < end


@dataclass(frozen=True)
class DeliveryToSend:
    id: int
    campaign_id: int
    occurrence_id: int
    chat_id: int
    chat_external_id: str
    text: str = field(repr=False)
    attempts: int
    expires_at: datetime


@dataclass(frozen=True)
class Planned:
    """What planning one occurrence did."""

    occurrence_id: int
    status: str  # planned | missed
    queued: int
    skipped: dict[str, int]


@dataclass(frozen=True)
class OccurrenceSummary:
    id: int
    due_at: datetime
    status: str
    counts: dict[str, int]


@dataclass(frozen=True)
class DeliveryRow:
    """One push of a campaign to one group, as the campaign page lists it."""

    id: int
    due_at: datetime
    chat_id: int
    chat_title: str | None
    area_label: str | None  # 东湖社区/1网格/5幢; None for a group no longer in the grid
    status: str
    reason: str | None
    attempts: int
    sent_at: datetime | None

    @property
    def reason_kind(self) -> str | None:
        """The reason without its particulars, the key the Chinese names are looked up by: a
        skip's reason as stored, a failure's (or a retry's) kind, as ``campaign_report`` counts."""
        if self.reason is None:
            return None
        return self.reason if self.status == "skipped" else _reason_kind(self.reason)


@dataclass(frozen=True)
class CampaignReport:
    campaign: CampaignView
    groups_targeted: int
    counts: dict[str, int]  # delivery status -> number
    skipped: dict[str, int]  # reason -> number
    failed: dict[str, int]  # reason -> number
    occurrences: list[OccurrenceSummary]


def campaign_view(c: Campaign, last_due_at: datetime | None = None) -> CampaignView:
    return CampaignView(
        id=c.id,
        name=c.name,
        created_by=c.created_by,
        area_id=c.area_id,
        audience_tags=tuple(c.audience_tags or ()),
        scam_types=tuple(c.scam_types or ()),
        template_key=c.template_key,
        text=c.text,
        schedule_kind=c.schedule_kind,
        schedule=dict(c.schedule or {}),
        starts_at=c.starts_at,
        ends_at=c.ends_at,
        quiet_start=c.quiet_start,
        quiet_end=c.quiet_end,
        weekly_budget=c.weekly_budget,
        grace_minutes=c.grace_minutes,
        status=c.status,
        created_at=c.created_at,
        last_due_at=last_due_at,
    )


def check_schedule(kind: str, schedule: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``schedule`` is the shape ``kind`` needs."""
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"schedule kind must be one of {SCHEDULE_KINDS}, not {kind!r}")
    if kind == "once":
        at = schedule.get("at")
        if not isinstance(at, str):
            raise ValueError('a one-off campaign needs {"at": ISO time}')
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("the time of a one-off campaign needs a time zone")
    elif kind == "recurring":
        days, times = schedule.get("weekdays"), schedule.get("times")
        if (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, int) and 0 <= d <= 6 for d in days)
        ):
            raise ValueError("a recurring campaign needs weekdays, 0 (Monday) to 6")
        if (
            not isinstance(times, list)
            or not times
            or not all(isinstance(t, str) and _HHMM.match(t) for t in times)
        ):
            raise ValueError("a recurring campaign needs times of day as HH:MM")
    else:
        lead = schedule.get("lead_minutes")
        if not isinstance(lead, int) or not 0 <= lead <= 24 * 60:
            raise ValueError("a peak-time campaign needs lead_minutes, 0 to 1440")


class Campaigns:
    """Mixed into ``Store``: needs ``run_in``, ``_insert`` and ``_audit``."""

    # Setting up

    def add_campaign(self, new: NewCampaign, by_user_id: int) -> CampaignView:
        """A campaign by a leader of its area (or an admin); ``PermissionError`` otherwise."""
        name = new.name.strip()
        if not name or len(name) > 128:
            raise ValueError("a campaign needs a name of 1 to 128 characters")
        check_schedule(new.schedule_kind, new.schedule)
        if new.schedule_kind == "peak" and not new.scam_types:
            raise ValueError("a peak-time campaign needs the scam types whose peaks it follows")
        if not new.template_key and not (new.text and new.text.strip()):
            raise ValueError("a campaign needs a template or its own text")
        for value in (new.quiet_start, new.quiet_end):
            if value is not None and not _HHMM.match(value):
                raise ValueError("quiet hours are HH:MM")
        if (new.quiet_start is None) != (new.quiet_end is None):
            raise ValueError("quiet hours need a start and an end")
        if not 1 <= new.weekly_budget <= 50:
            raise ValueError("the weekly budget is 1 to 50 pushes per group")
        if not 0 <= new.grace_minutes <= 24 * 60:
            raise ValueError("the grace time is 0 to 1440 minutes")
        if new.starts_at.tzinfo is None or (new.ends_at and new.ends_at.tzinfo is None):
            raise ValueError("start and end need a time zone")
        if new.ends_at is not None and new.ends_at <= new.starts_at:
            raise ValueError("a campaign must end after it starts")
        if not self.leads(by_user_id, new.area_id):  # type: ignore[attr-defined]
            raise PermissionError("only a leader of this area may target it")

        def work(session: Session) -> CampaignView:
            now = utcnow()
            row = Campaign(
                name=name,
                created_by=by_user_id,
                area_id=new.area_id,
                audience_tags=list(dict.fromkeys(new.audience_tags)),
                scam_types=list(dict.fromkeys(new.scam_types)),
                template_key=new.template_key,
                text=new.text.strip() if new.text else None,
                schedule_kind=new.schedule_kind,
                schedule=dict(new.schedule),
                starts_at=new.starts_at,
                ends_at=new.ends_at,
                quiet_start=new.quiet_start,
                quiet_end=new.quiet_end,
                weekly_budget=new.weekly_budget,
                grace_minutes=new.grace_minutes,
                status="active",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            self._audit(  # type: ignore[attr-defined]
                session,
                f"user:{by_user_id}",
                "campaign.create",
                "campaign",
                row.id,
                {"area_id": new.area_id, "schedule_kind": new.schedule_kind},
            )
            return campaign_view(row)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def get_campaign(self, campaign_id: int) -> CampaignView | None:
        def work(session: Session) -> CampaignView | None:
            row = session.get(Campaign, campaign_id)
            return campaign_view(row, self._last_due(session, row.id)) if row else None

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    @staticmethod
    def _last_due(session: Session, campaign_id: int) -> datetime | None:
        return session.execute(
            sa.select(sa.func.max(CampaignOccurrence.due_at)).where(
                CampaignOccurrence.campaign_id == campaign_id
            )
        ).scalar_one_or_none()

    def campaigns_visible_to(self, user_id: int) -> list[CampaignView]:
        """An admin's or staff member's: all (staff only look); a leader's: those targeting the
        areas they lead, and their own."""

        def work(session: Session) -> list[CampaignView]:
            user = session.get(User, user_id)
            if user is None:
                return []
            query = sa.select(Campaign).order_by(Campaign.id.desc())
            if user.role not in ("admin", "staff"):
                led = session.execute(
                    sa.select(AreaLeader.area_id).where(AreaLeader.user_id == user_id)
                ).scalars()
                reach: set[int] = set()
                for area_id in led:
                    reach.update(subtree_ids(session, area_id))
                query = query.where(
                    sa.or_(Campaign.area_id.in_(reach), Campaign.created_by == user_id)
                )
            return [campaign_view(c) for c in session.execute(query).scalars()]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def active_campaigns(self) -> list[CampaignView]:
        def work(session: Session) -> list[CampaignView]:
            last = (
                sa.select(
                    CampaignOccurrence.campaign_id,
                    sa.func.max(CampaignOccurrence.due_at).label("last_due"),
                )
                .group_by(CampaignOccurrence.campaign_id)
                .subquery()
            )
            rows = session.execute(
                sa.select(Campaign, last.c.last_due)
                .outerjoin(last, last.c.campaign_id == Campaign.id)
                .where(Campaign.status == "active")
                .order_by(Campaign.id)
            ).all()
            return [campaign_view(c, due) for c, due in rows]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def set_campaign_status(self, campaign_id: int, status: str, actor: str) -> CampaignView:
        if status not in CAMPAIGN_STATUSES:
            raise ValueError(f"status must be one of {CAMPAIGN_STATUSES}")

        def work(session: Session) -> CampaignView:
            row = session.execute(
                sa.select(Campaign).where(Campaign.id == campaign_id).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no campaign {campaign_id}")
            old = row.status
            if status != old and status not in CAMPAIGN_MOVES.get(old, ()):
                raise CampaignMoveError(f"a campaign cannot go from {old} to {status}")
            if status == "active" and row.ends_at is not None and row.ends_at <= utcnow():
                raise CampaignMoveError("a campaign past its end date cannot be resumed")
            row.status = status
            row.updated_at = utcnow()
            if status in ("cancelled", "paused"):  # what waits to be sent goes no further
                session.execute(
                    sa.update(CampaignDelivery)
                    .where(
                        CampaignDelivery.campaign_id == campaign_id,
                        CampaignDelivery.status == "queued",
                    )
                    .values(status="skipped", reason=f"campaign {status}")
                )
            session.flush()
            self._audit(  # type: ignore[attr-defined]
                session, actor, "campaign.status", "campaign", row.id, {"from": old, "to": status}
            )
            return campaign_view(row)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    # Planning

    @staticmethod
    def _targets(session: Session, campaign: Campaign) -> list[Chat]:
        ids = subtree_ids(session, campaign.area_id)
        chats = session.execute(
            sa.select(Chat).where(Chat.kind == "group", Chat.area_id.in_(ids)).order_by(Chat.id)
        ).scalars()
        wanted = set(campaign.audience_tags or ()) - {"all"}
        if not wanted:
            return list(chats)
        return [c for c in chats if wanted & set(c.tags or ())]

    def plan_occurrence(
        self,
        campaign_id: int,
        due_at: datetime,
        text: str,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> Planned | None:
        """Record an occurrence and its deliveries at once; None if it was recorded before.

        Past its grace time (``now > due_at + grace``) it is recorded as missed and every group's
        delivery as skipped; otherwise each targeted group gets a queued delivery unless it
        opted out, the time is in the quiet hours, or its week's budget is spent.
        """
        if due_at.tzinfo is None or now.tzinfo is None:
            raise ValueError("times need a time zone")

        def work(session: Session) -> Planned | None:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise NotFound(f"no campaign {campaign_id}")
            view = campaign_view(campaign)
            missed = now > due_at + view.grace
            inserted = session.execute(
                self._insert(CampaignOccurrence)  # type: ignore[attr-defined]
                .values(
                    campaign_id=campaign_id,
                    due_at=due_at,
                    status="missed" if missed else "planned",
                    details={**(details or {}), "text": text},
                    planned_at=now,
                )
                .on_conflict_do_nothing(index_elements=["campaign_id", "due_at"])
                .returning(CampaignOccurrence.__table__.c.id)
            ).scalar_one_or_none()
            if inserted is None:
                return None
            targets = self._targets(session, campaign)
            used = self._budget_used(session, [c.id for c in targets], due_at)
            quiet = view.in_quiet_hours(due_at)
            rows = []
            skipped: Counter[str] = Counter()
            for chat in targets:
                reason = None
                if missed:
                    reason = MISSED
                elif chat.campaigns_opt_out:
                    reason = OPTED_OUT
                elif quiet:
                    reason = QUIET_HOURS
                elif used.get(chat.id, 0) >= view.weekly_budget:
                    reason = BUDGET
                if reason:
                    skipped[reason] += 1
                rows.append(
                    {
                        "campaign_id": campaign_id,
                        "occurrence_id": inserted,
                        "chat_id": chat.id,
                        "status": "skipped" if reason else "queued",
                        "reason": reason,
                        "attempts": 0,
                        "next_attempt_at": due_at,
                        "expires_at": due_at + view.grace,
                        "created_at": now,
                    }
                )
            if rows:
                session.execute(sa.insert(CampaignDelivery), rows)
            if campaign.schedule_kind == "once":
                campaign.status = "ended"
                campaign.updated_at = now
            return Planned(
                inserted,
                "missed" if missed else "planned",
                len(rows) - sum(skipped.values()),
                dict(skipped),
            )

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    @staticmethod
    def _budget_used(session: Session, chat_ids: list[int], due_at: datetime) -> dict[int, int]:
        """Pushes each group had (or has on the way) in the week before ``due_at``."""
        if not chat_ids:
            return {}
        used: dict[int, int] = {}
        for start in range(0, len(chat_ids), 500):  # keep IN lists short
            part = chat_ids[start : start + 500]
            rows = session.execute(
                sa.select(CampaignDelivery.chat_id, sa.func.count())
                .join(CampaignOccurrence, CampaignOccurrence.id == CampaignDelivery.occurrence_id)
                .where(
                    CampaignDelivery.chat_id.in_(part),
                    CampaignDelivery.status.in_(_COUNTED),
                    CampaignOccurrence.due_at > due_at - BUDGET_WINDOW,
                    CampaignOccurrence.due_at <= due_at,
                )
                .group_by(CampaignDelivery.chat_id)
            ).all()
            used.update({int(chat): int(count) for chat, count in rows})
        return used

    def end_campaign_if_over(self, campaign_id: int, now: datetime) -> bool:
        def work(session: Session) -> bool:
            row = session.get(Campaign, campaign_id)
            if row is None or row.status != "active" or row.ends_at is None or row.ends_at > now:
                return False
            row.status = "ended"
            row.updated_at = now
            return True

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    # Sending

    def deliveries_claim(
        self, limit: int, now: datetime | None = None, *, expire: bool = True
    ) -> list[DeliveryToSend]:
        """Take due queued deliveries for sending, oldest due first. Those past their grace
        time are never taken; with ``expire`` they are also failed as expired (a pass over the
        whole queue, which a sender need not make for every push)."""
        now = now or utcnow()

        def work(session: Session) -> list[DeliveryToSend]:
            table = CampaignDelivery.__table__
            if expire:
                session.execute(
                    sa.update(table)
                    .where(table.c.status == "queued", table.c.expires_at <= now)
                    .values(
                        status="failed",
                        reason=sa.func.coalesce(
                            sa.literal(EXPIRED + ": ") + table.c.reason, sa.literal(EXPIRED)
                        ),
                    )
                )
            query = (
                sa.select(table.c.id)
                .where(
                    table.c.status == "queued",
                    table.c.next_attempt_at <= now,
                    table.c.expires_at > now,
                )
                .order_by(table.c.next_attempt_at, table.c.id)
                .limit(limit)
            )
            if self.dialect == "postgresql":  # type: ignore[attr-defined]
                query = query.with_for_update(skip_locked=True)
            ids = list(session.execute(query).scalars())
            if not ids:
                return []
            session.execute(
                sa.update(table)
                .where(table.c.id.in_(ids), table.c.status == "queued")
                .values(status="sending", claimed_at=utcnow())  # the wall clock: for staleness
            )
            rows = session.execute(
                sa.select(
                    table.c.id,
                    table.c.campaign_id,
                    table.c.occurrence_id,
                    table.c.chat_id,
                    Chat.external_id,
                    CampaignOccurrence.details,
                    table.c.attempts,
                    table.c.expires_at,
                )
                .join(Chat, Chat.id == table.c.chat_id)
                .join(CampaignOccurrence, CampaignOccurrence.id == table.c.occurrence_id)
                .where(table.c.id.in_(ids))
                .order_by(table.c.next_attempt_at, table.c.id)
            ).all()
            return [
                DeliveryToSend(
                    id=r[0],
                    campaign_id=r[1],
                    occurrence_id=r[2],
                    chat_id=r[3],
                    chat_external_id=r[4],
                    text=str((r[5] or {}).get("text", "")),
                    attempts=r[6],
                    expires_at=r[7],
                )
                for r in rows
            ]

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def _delivery_update(self, ids: Iterable[int], **values: Any) -> None:
        ids = list(ids)

        def work(session: Session) -> None:
            session.execute(
                sa.update(CampaignDelivery)
                .where(CampaignDelivery.id.in_(ids), CampaignDelivery.status == "sending")
                .values(**values)
            )

        if ids:
            self.run_in(work, write=True)  # type: ignore[attr-defined]

    def delivery_sent(self, delivery_id: int, external_message_id: int | None) -> None:
        self._delivery_update(
            [delivery_id],
            status="sent",
            sent_at=utcnow(),
            external_message_id=external_message_id,
            attempts=CampaignDelivery.attempts + 1,
            reason=None,
        )

    def delivery_retry(self, delivery_id: int, error: str, not_before: datetime) -> None:
        """Back to the queue, to be tried again from ``not_before``."""
        self._delivery_update(
            [delivery_id],
            status="queued",
            reason=error[:ERROR_MAX_CHARS],
            attempts=CampaignDelivery.attempts + 1,
            next_attempt_at=not_before,
        )

    def deliveries_waiting(self) -> int:
        """Deliveries still to be sent or on the way."""

        def work(session: Session) -> int:
            return int(
                session.execute(
                    sa.select(sa.func.count()).where(
                        CampaignDelivery.status.in_(("queued", "sending"))
                    )
                ).scalar_one()
            )

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def delivery_fail(self, delivery_id: int, error: str) -> None:
        self._delivery_update(
            [delivery_id],
            status="failed",
            reason=error[:ERROR_MAX_CHARS],
            attempts=CampaignDelivery.attempts + 1,
        )

    def deliveries_release(self, delivery_ids: Iterable[int]) -> None:
        """Put claimed deliveries back untried (the sender is stopping)."""
        self._delivery_update(delivery_ids, status="queued")

    def deliveries_interrupted(self, older_than_seconds: float = 0.0) -> int:
        """Deliveries a stopped process left ``sending``: failed, never sent again."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)

        def work(session: Session) -> int:
            result = session.execute(
                sa.update(CampaignDelivery)
                .where(
                    CampaignDelivery.status == "sending",
                    CampaignDelivery.claimed_at <= cutoff,
                )
                .values(status="failed", reason=INTERRUPTED)
            )
            return int(result.rowcount or 0)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def chat_migrated(self, old_external_id: str, new_external_id: str) -> None:
        """A group became a supergroup: its record follows it to the new id."""

        def work(session: Session) -> None:
            taken = session.execute(
                sa.select(Chat.id).where(
                    Chat.channel == "telegram", Chat.external_id == new_external_id
                )
            ).first()
            if taken is None:
                session.execute(
                    sa.update(Chat)
                    .where(Chat.channel == "telegram", Chat.external_id == old_external_id)
                    .values(external_id=new_external_id)
                )

        self.run_in(work, write=True)  # type: ignore[attr-defined]

    # Reporting

    def campaign_report(self, campaign_id: int, occurrences: int = 10) -> CampaignReport:
        def work(session: Session) -> CampaignReport:
            row = session.get(Campaign, campaign_id)
            if row is None:
                raise NotFound(f"no campaign {campaign_id}")
            d = CampaignDelivery
            by_status = session.execute(
                sa.select(d.status, d.reason, sa.func.count())
                .where(d.campaign_id == campaign_id)
                .group_by(d.status, d.reason)
            ).all()
            counts: Counter[str] = Counter()
            skipped: Counter[str] = Counter()
            failed: Counter[str] = Counter()
            for status, reason, n in by_status:
                counts[status] += n
                if status == "skipped":
                    skipped[reason or "?"] += n
                elif status == "failed":
                    failed[_reason_kind(reason)] += n
            recent = session.execute(
                sa.select(CampaignOccurrence)
                .where(CampaignOccurrence.campaign_id == campaign_id)
                .order_by(CampaignOccurrence.due_at.desc())
                .limit(occurrences)
            ).scalars()
            summaries = []
            for occ in recent:
                per = session.execute(
                    sa.select(d.status, sa.func.count())
                    .where(d.occurrence_id == occ.id)
                    .group_by(d.status)
                ).all()
                summaries.append(
                    OccurrenceSummary(occ.id, occ.due_at, occ.status, {s: n for s, n in per})
                )
            return CampaignReport(
                campaign=campaign_view(row, self._last_due(session, row.id)),
                groups_targeted=len(self._targets(session, row)),
                counts=dict(counts),
                skipped=dict(skipped),
                failed=dict(failed),
                occurrences=summaries,
            )

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def campaign_deliveries(
        self,
        campaign_id: int,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[DeliveryRow], int]:
        """One page of a campaign's pushes, newest due time first, and how many the status filter
        matches: a count and a page, two queries, each group's place in the grid joined in (the
        tree is community → grid → building, so its area and the two above it name it)."""
        if status is not None and status not in DELIVERY_STATUSES:
            raise ValueError(f"status must be one of {DELIVERY_STATUSES}, not {status!r}")
        for name, value, low, high in (
            ("limit", limit, 1, MAX_DELIVERY_PAGE),
            ("offset", offset, 0, None),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number")
            if value < low or (high is not None and value > high):
                bound = f"{low} to {high}" if high is not None else f"at least {low}"
                raise ValueError(f"{name} must be {bound}, not {value}")
        d = CampaignDelivery
        where = [d.campaign_id == campaign_id]
        if status is not None:
            where.append(d.status == status)
        a1, a2, a3 = aliased(Area), aliased(Area), aliased(Area)

        def work(session: Session) -> tuple[list[DeliveryRow], int]:
            total = int(session.execute(sa.select(sa.func.count(d.id)).where(*where)).scalar_one())
            if total == 0 and session.get(Campaign, campaign_id) is None:
                raise NotFound(f"no campaign {campaign_id}")
            rows = session.execute(
                sa.select(
                    d.id,
                    CampaignOccurrence.due_at,
                    d.chat_id,
                    Chat.title,
                    a1.id.label("area_id"),
                    a1.name.label("name1"),
                    a2.name.label("name2"),
                    a3.name.label("name3"),
                    d.status,
                    d.reason,
                    d.attempts,
                    d.sent_at,
                )
                .join(CampaignOccurrence, CampaignOccurrence.id == d.occurrence_id)
                .join(Chat, Chat.id == d.chat_id)
                .outerjoin(a1, a1.id == Chat.area_id)
                .outerjoin(a2, a2.id == a1.parent_id)
                .outerjoin(a3, a3.id == a2.parent_id)
                .where(*where)
                .order_by(CampaignOccurrence.due_at.desc(), d.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return [
                DeliveryRow(
                    id=r.id,
                    due_at=r.due_at,
                    chat_id=r.chat_id,
                    chat_title=r.title,
                    area_label=(
                        path_label(r.name1, r.name2, r.name3) if r.area_id is not None else None
                    ),
                    status=r.status,
                    reason=r.reason,
                    attempts=r.attempts,
                    sent_at=r.sent_at,
                )
                for r in rows
            ], total

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def delivery_counts(self, campaign_id: int | None = None) -> dict[str, int]:
        def work(session: Session) -> dict[str, int]:
            query = sa.select(CampaignDelivery.status, sa.func.count()).group_by(
                CampaignDelivery.status
            )
            if campaign_id is not None:
                query = query.where(CampaignDelivery.campaign_id == campaign_id)
            return {s: int(n) for s, n in session.execute(query).all()}

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def area_exists(self, area_id: int) -> bool:
        return self.run_in(  # type: ignore[attr-defined]
            lambda s: s.get(Area, area_id) is not None, write=False
        )


def _reason_kind(reason: str | None) -> str:
    """A failure reason without its particulars, for counting ("Forbidden", "expired", ...)."""
    if not reason:
        return "?"
    if reason.startswith(INTERRUPTED):
        return "interrupted"
    return reason.split(":", 1)[0].strip()[:60]
