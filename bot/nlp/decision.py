"""The decision shared by the bot and ``antifraud classify``: scam or not, which kind, how sure.

Input is Rasa's parse result (intent and intent ranking) and the red flags and indicators that
``analysis`` found. The model's scam probability is the sum of its confidences over the scam
intents, so a message the model splits between two scam types is still caught; but one scam type
must also stand out on its own, since an unsure model spreads its confidence evenly and twelve
scam intents would otherwise outvote one ``not_scam``. Red flags lower the bar for a message the
model leans towards calling a scam, and choose the type when the model hesitates between two.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.nlp import indicators as ind
from bot.nlp.analysis import Analysis
from bot.nlp.taxonomy import NOT_SCAM, OTHER_SCAM, Taxonomy

FALLBACK_INTENT = "nlu_fallback"
URGENT_INTENT = "money_transferred"
HIGH = "high"
MEDIUM = "medium"
LOW = "low"

# A message the model is unsure of counts as a scam with this many distinct red-flag phrases.
_FLAGS_TO_TIP = 2
# The best scam type must reach this on its own (see the module docstring).
_SCAM_FLOOR = 0.3
_HIGH_CONFIDENCE = 0.8
# The confidence given to a scam found by a red flag and a contact alone (the model missed it).
_FLAGGED_CONFIDENCE = 0.5
CONTACT_KINDS = frozenset({ind.PHONE_MOBILE, ind.QQ, ind.WECHAT, ind.BANK_CARD, ind.LINK})
# When the two best scam types are this close, red flags decide between them.
_TYPE_MARGIN = 0.15


@dataclass(frozen=True)
class Verdict:
    """The outcome for one message."""

    scam_type: str
    is_scam: bool
    confidence: float
    intent: str | None
    risk: str


def _ranking(parse: dict) -> list[tuple[str, float]]:
    ranking = parse.get("intent_ranking") or []
    if not ranking and parse.get("intent"):
        ranking = [parse["intent"]]
    return [
        (str(r.get("name")), float(r.get("confidence") or 0.0))
        for r in ranking
        if r.get("name") and r.get("name") != FALLBACK_INTENT
    ]


def _pick_type(scores: list[tuple[str, float]], analysis: Analysis) -> str:
    """The scam type code: the model's best, unless red flags clearly favour a close second."""
    flags = analysis.red_flag_counts()
    if not scores:
        return flags.most_common(1)[0][0] if flags else OTHER_SCAM
    best_code, best = scores[0]
    for code, score in scores[1:]:
        if best - score > _TYPE_MARGIN:
            break
        if flags.get(code, 0) > flags.get(best_code, 0):
            return code
    if best < _SCAM_FLOOR and flags:
        return flags.most_common(1)[0][0]
    return best_code


def decide(parse: dict, analysis: Analysis, taxonomy: Taxonomy, threshold: float) -> Verdict:
    """Combine the NLU result with the red flags and indicators into a verdict."""
    raw_intent = (parse.get("intent") or {}).get("name")
    ranking = _ranking(parse)
    scam_scores = []
    for name, confidence in ranking:
        scam_type = taxonomy.by_intent(name)
        if scam_type is not None and scam_type.is_scam:
            scam_scores.append((scam_type.code, confidence))
    scam_scores.sort(key=lambda item: -item[1])
    scam_prob = sum(score for _, score in scam_scores)
    top_intent = ranking[0][0] if ranking else None
    distinct_flags = sum(analysis.red_flag_counts().values())

    urgent = top_intent == URGENT_INTENT
    best_scam = scam_scores[0][1] if scam_scores else 0.0
    # "Leaning": the model's first choice is a scam type, just not a confident one.
    leaning = bool(scam_scores) and top_intent == taxonomy.get(scam_scores[0][0]).intent
    is_scam = urgent or (
        best_scam >= _SCAM_FLOOR
        and (scam_prob >= threshold or (leaning and distinct_flags >= _FLAGS_TO_TIP))
    )
    # A red flag together with a way to reach the sender privately (a mobile number, QQ,
    # WeChat, a bank card, a link) is a scam even when the model missed it: ordinary messages
    # and warnings seldom have both. Medium risk only: the model did not back it.
    contact = any(i.kind in CONTACT_KINDS for i in analysis.indicators)
    if not is_scam and distinct_flags >= 1 and contact:
        code = _pick_type([], analysis)
        return Verdict(
            code, True, round(max(scam_prob, _FLAGGED_CONFIDENCE), 4), raw_intent, MEDIUM
        )
    if not is_scam:
        return Verdict(NOT_SCAM, False, round(1.0 - scam_prob, 4), raw_intent, LOW)

    code = _pick_type(scam_scores, analysis)
    confidence = ranking[0][1] if urgent else scam_prob
    evidence = distinct_flags > 0 or bool(analysis.indicators)
    risk = HIGH if urgent or (confidence >= _HIGH_CONFIDENCE and evidence) else MEDIUM
    return Verdict(code, True, round(confidence, 4), raw_intent, risk)
