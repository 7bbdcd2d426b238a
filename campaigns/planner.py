"""The planner: works out each campaign's due times and records them, with their deliveries.

``Planner.tick(now)`` is the whole of scheduling: for every active campaign it finds the due
times between the last one recorded (or the campaign's start) and ``now``, and records each one
with its deliveries (``Store.plan_occurrence``): queued for the groups it targets, or skipped
with the reason. A due time already recorded is never recorded again, so ticks may repeat,
overlap a restart or run late: a due time missed while the bot was down is planned when the bot
comes back if it is still within the campaign's grace time, and recorded as missed otherwise.

Due times come from APScheduler's triggers in Asia/Shanghai time: a ``DateTrigger`` for a
one-off campaign, a ``CronTrigger`` per time of day for a recurring one; a peak-time campaign's
come from the incidence analysis of the case data (``campaigns.peaks``): a set time before each
peak window of its scam types for its audiences, in its area (or the wider area the analysis
falls back to). Time is passed in (``now``), never read here, so tests drive a clock of their
own.
"""

from __future__ import annotations

import logging
import time as walltime
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from bot.store.campaigns import SHANGHAI, CampaignView, Planned
from bot.store.errors import StoreUnavailable
from bot.store.repo import Store
from campaigns.audience import ALL, AUDIENCES
from campaigns.templates import (
    CustomTextError,
    Template,
    TemplateError,
    load_templates,
    render_custom,
)

logger = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Peak windows closer than this give one push, at the earlier time.
MERGE_WITHIN = timedelta(minutes=60)
# At most this many due times of one campaign are recorded per tick (after a long outage).
MAX_PER_TICK = 500
PEAKS_TTL_SECONDS = 600.0
LOOKAHEAD = timedelta(days=8)


def _parse(at: str) -> datetime:
    when = datetime.fromisoformat(at)
    if when.tzinfo is None:
        raise ValueError("a time without a time zone")
    return when


def recurring_times(
    schedule: dict[str, Any], after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The due times of a weekly schedule in ``(after, until]``, from APScheduler's cron."""
    days = ",".join(WEEKDAYS[d] for d in sorted(set(schedule["weekdays"])))
    found: list[datetime] = []
    for hhmm in sorted(set(schedule["times"])):
        hour, minute = (int(part) for part in hhmm.split(":"))
        trigger = CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=SHANGHAI)
        fire = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
        while fire is not None and fire <= until and len(found) < limit * 2:
            found.append(fire)
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return sorted(found)[:limit]


@dataclass
class PeakSource:
    """Peak windows from the case data, per (scam type, audience, area), kept for a while:
    the analysis reads every matching case and the data changes only on an import."""

    store: Store
    ttl_seconds: float = PEAKS_TTL_SECONDS
    # The planner's clock at its current tick: cases after it are not counted (a case dated in
    # the future is a typing error), which also lets tests run on a clock of their own.
    now: datetime | None = None
    _cache: dict[tuple[str, str, int | None], tuple[float, Any]] = field(default_factory=dict)

    def incidence(self, scam_type: str, audience: str, area_id: int | None) -> Any:
        from campaigns.peaks import peaks_for

        key = (scam_type, audience, area_id)
        hit = self._cache.get(key)
        if hit is not None and walltime.monotonic() - hit[0] < self.ttl_seconds:
            return hit[1]
        result = peaks_for(self.store, scam_type, audience, area_id, now=self.now)
        self._cache[key] = (walltime.monotonic(), result)
        return result

    def forget(self) -> None:
        self._cache.clear()

    def send_times(
        self, campaign: CampaignView, after: datetime, until: datetime
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """``lead_minutes`` before each peak window of the campaign's types and audiences."""
        from campaigns.incidence import next_occurrences

        lead = timedelta(minutes=int(campaign.schedule["lead_minutes"]))
        audiences = [a for a in campaign.audience_tags if a in AUDIENCES] or [ALL]
        found: list[tuple[datetime, dict[str, Any]]] = []
        for scam_type in campaign.scam_types:
            for audience in audiences:
                incidence = self.incidence(scam_type, audience, campaign.area_id)
                if not incidence.peaks:
                    continue
                for send_at, window in next_occurrences(incidence.peaks, lead, after, until):
                    found.append(
                        (
                            send_at,
                            {
                                "scam_type": scam_type,
                                "audience": audience,
                                "weekday": window.weekday,
                                "start_hour": window.start_hour,
                                "hours": window.hours,
                                "area": incidence.area_label,
                            },
                        )
                    )
        found.sort(key=lambda item: item[0])
        merged: list[tuple[datetime, dict[str, Any]]] = []
        for send_at, info in found:
            if merged and send_at - merged[-1][0] < MERGE_WITHIN:
                merged[-1][1].setdefault("also", []).append(info)
                continue
            merged.append((send_at, {"peak": info}))
        return merged


@dataclass(frozen=True)
class TickResult:
    planned: list[Planned]
    next_due: datetime | None
    errors: dict[int, str]


@dataclass
class Planner:
    store: Store
    templates: dict[str, Template] = field(default_factory=load_templates)
    peaks: PeakSource | None = None
    on_planned: Callable[[Planned], None] | None = None

    def __post_init__(self) -> None:
        if self.peaks is None:
            self.peaks = PeakSource(self.store)

    def text_of(self, campaign: CampaignView) -> str:
        """What the campaign says: its template rendered, or the leader's own text."""
        if campaign.template_key:
            template = self.templates.get(campaign.template_key)
            if template is None:
                raise TemplateError(campaign.template_key, "no such template")
            return template.render()
        return render_custom(campaign.text or "", self.store.area_path(campaign.area_id)[-1].name)

    def due_times(
        self, campaign: CampaignView, after: datetime, until: datetime, limit: int = MAX_PER_TICK
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """The campaign's due times in ``(after, until]``, within its start and end."""
        start = max(after, campaign.starts_at - timedelta(microseconds=1))
        end = min(until, campaign.ends_at) if campaign.ends_at else until
        if end <= start:
            return []
        if campaign.schedule_kind == "once":
            at = _parse(campaign.schedule["at"])
            return [(at, {})] if start < at <= end else []
        if campaign.schedule_kind == "recurring":
            return [(t, {}) for t in recurring_times(campaign.schedule, start, end, limit)]
        assert self.peaks is not None
        return self.peaks.send_times(campaign, start, end)[:limit]

    def tick(self, now: datetime) -> TickResult:
        """Record every due time up to ``now`` not recorded yet; say when the next one is."""
        planned: list[Planned] = []
        errors: dict[int, str] = {}
        assert self.peaks is not None
        self.peaks.now = now
        next_due: datetime | None = None
        try:
            campaigns = self.store.active_campaigns()
        except StoreUnavailable as exc:
            logger.warning("campaign planning waits for the store: %s", exc)
            return TickResult([], None, {})
        for campaign in campaigns:
            try:
                # After the last due time recorded; at first, from the start (due times
                # before the campaign was created never applied).
                after = campaign.last_due_at or max(
                    campaign.starts_at - timedelta(microseconds=1), campaign.created_at
                )
                due = self.due_times(campaign, after, now)
                if due:
                    text = self.text_of(campaign)
                    for due_at, details in due:
                        result = self.store.plan_occurrence(
                            campaign.id, due_at, text, now, details
                        )
                        if result is not None:
                            planned.append(result)
                            if self.on_planned:
                                self.on_planned(result)
                upcoming = self.due_times(campaign, max(now, after), now + LOOKAHEAD, limit=1)
                if upcoming:
                    when = upcoming[0][0]
                    next_due = when if next_due is None or when < next_due else next_due
                elif campaign.ends_at is not None and campaign.ends_at <= now:
                    self.store.end_campaign_if_over(campaign.id, now)
            except (TemplateError, CustomTextError, ValueError, KeyError) as exc:
                logger.error("campaign %s cannot be planned: %s", campaign.id, exc)
                errors[campaign.id] = str(exc)
            except StoreUnavailable as exc:
                logger.warning("campaign %s planning waits for the store: %s", campaign.id, exc)
                errors[campaign.id] = str(exc)
        return TickResult(planned, next_due, errors)
