"""What staff already know about a message: an earlier verdict on it and confirmed indicators.

Shared by the custom action that checks a message and by the bot's quiet check of group
messages, so both weigh a message against the same knowledge (``bot.nlp.assess``).
"""

from __future__ import annotations

import logging

from bot.nlp.analysis import Analysis
from bot.nlp.assess import CONFIRMED, Assessment, Known
from bot.store.repo import NewReport, Store, StoreUnavailable

logger = logging.getLogger(__name__)


def known_about(store: Store, analysis: Analysis) -> Known:
    """The store's knowledge of this message; nothing known when the store cannot be reached."""
    pairs = [(i.kind, i.value) for i in analysis.indicators]
    try:
        seen, times = store.look_up(analysis.normalized)
        statuses = store.indicator_statuses(pairs) if pairs else {}
    except StoreUnavailable:
        logger.warning("store unavailable: assessing without earlier reviews")
        return Known()
    confirmed = tuple(v.masked for v in statuses.values() if v.status == CONFIRMED)
    if seen is None:
        return Known(times_reported=times, confirmed_indicators=confirmed)
    return Known(
        seen_verdict=seen.verdict,
        seen_scam_type=seen.scam_type,
        seen_match=seen.match,
        seen_report_id=seen.report_id,
        times_reported=times,
        confirmed_indicators=confirmed,
    )


def report_of(
    analysis: Analysis,
    result: Assessment,
    *,
    sender_id: str,
    channel: str,
    source: str,
    chat_external_id: str | None,
    inbound_message_id: int | None,
) -> NewReport:
    """The report of a message judged a scam, as the action and the group check both log it."""
    return NewReport(
        sender_id=sender_id[:128],
        channel=channel,
        text=analysis.text,
        text_masked=analysis.masked_text(),
        normalized=analysis.normalized,
        source=source,
        scam_type=result.scam_type,
        confidence=result.confidence,
        risk=result.risk,
        intent=result.model.intent,
        red_flags=analysis.red_flags_dict(),
        indicators=[(i.kind, i.value, i.masked) for i in analysis.indicators],
        chat_external_id=chat_external_id,
        inbound_message_id=inbound_message_id,
        details={"basis": result.basis},
    )
