"""The risk of one message: the model's verdict weighed against what staff already know.

``decision.decide`` judges a message on its own (the NLU result, red flags and indicators). Staff
know more: phones, links and accounts they confirmed as used by scammers, and messages they have
already reviewed. Those outrank the model, in this order:

1. the same or a near-identical message was confirmed as a scam: that verdict and its type;
2. it names a confirmed scam phone, link or account: a scam, high risk, whatever the model says;
3. the same message was dismissed by staff (or a near copy was, and the model is not sure): not a
   scam;
4. otherwise the model's verdict.

Kept free of the store's types so the bot's quiet group path can use it with any look-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.nlp.analysis import Analysis
from bot.nlp.decision import HIGH, LOW, Verdict
from bot.nlp.taxonomy import NOT_SCAM, OTHER_SCAM

CONFIRMED = "confirmed"
DISMISSED = "dismissed"
EXACT = "exact"

# Why a message was judged as it was (machine codes, shown to staff and in tests).
BY_MODEL = "model"
BY_SEEN_CONFIRMED = "seen_confirmed"
BY_SEEN_DISMISSED = "seen_dismissed"
BY_CONFIRMED_INDICATOR = "confirmed_indicator"


@dataclass(frozen=True)
class Known:
    """What the store knows about a message: an earlier review and confirmed indicators."""

    seen_verdict: str | None = None  # CONFIRMED or DISMISSED
    seen_scam_type: str | None = None
    seen_match: str | None = None  # EXACT or "near"
    seen_report_id: int | None = None
    times_reported: int = 0
    confirmed_indicators: tuple[str, ...] = ()  # masked values, for the reply


@dataclass(frozen=True)
class Assessment:
    """The final judgement on a message, with the model's own verdict kept beside it."""

    scam_type: str
    is_scam: bool
    risk: str
    confidence: float
    basis: str
    model: Verdict
    known: Known

    @property
    def has_evidence(self) -> bool:
        """True when something besides the model backs the judgement."""
        return self.basis != BY_MODEL

    def evidence_in(self, analysis: Analysis) -> bool:
        """A red flag, an indicator, a confirmed indicator or a reviewed report."""
        return self.has_evidence or bool(analysis.red_flags) or bool(analysis.indicators)


def assess(verdict: Verdict, known: Known | None = None) -> Assessment:
    """Combine the model's verdict with what staff already judged (see the module docstring)."""
    known = known or Known()
    if known.seen_verdict == CONFIRMED:
        scam_type = known.seen_scam_type or (verdict.scam_type if verdict.is_scam else OTHER_SCAM)
        return Assessment(scam_type, True, HIGH, 1.0, BY_SEEN_CONFIRMED, verdict, known)
    if known.confirmed_indicators:
        scam_type = verdict.scam_type if verdict.is_scam else OTHER_SCAM
        return Assessment(scam_type, True, HIGH, 1.0, BY_CONFIRMED_INDICATOR, verdict, known)
    if known.seen_verdict == DISMISSED and (known.seen_match == EXACT or verdict.risk != HIGH):
        return Assessment(NOT_SCAM, False, LOW, 1.0, BY_SEEN_DISMISSED, verdict, known)
    return Assessment(
        verdict.scam_type,
        verdict.is_scam,
        verdict.risk,
        verdict.confidence,
        BY_MODEL,
        verdict,
        known,
    )
