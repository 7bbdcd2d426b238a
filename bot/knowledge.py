"""What staff already know about a message: an earlier verdict on it and confirmed indicators.

Shared by the custom action that checks a message and by the bot's quiet check of group
messages, so both weigh a message against the same knowledge (``bot.nlp.assess``).
"""

from __future__ import annotations

import logging

from bot.nlp.analysis import Analysis
from bot.nlp.assess import CONFIRMED, Known
from bot.store.repo import Store, StoreUnavailable

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
