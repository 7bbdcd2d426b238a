"""Long messages judged part by part: a screenshot or a forwarded chat holds several messages.

The NLU model learnt from single messages. Given a whole chat log read from a screenshot
(timestamps, names, the scammer's pitch and the resident's questions run together), it can miss
a scam that it catches at once in any one of the scammer's lines. So a long message is also
judged by its parts (its lines, and the sentences of a long line), and the strongest scam among
them counts, if the evidence agrees: two parts of the same scam type, or one part together with
several red flags in the whole text, or one part the model is sure of together with a red flag
and a link, phone or account in the whole. Short messages are judged whole, as before.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from bot.nlp import indicators as ind
from bot.nlp.analysis import Analysis
from bot.nlp.decision import HIGH, MEDIUM, Verdict

# A message this long, or of this many lines, is also judged by its parts.
LONG_CHARS = 60
MANY_LINES = 3
# Parts with fewer letters than this (digits do not count) are names, times and the like.
MIN_PART_CHARS = 5
LONG_LINE = 80
MAX_PARTS = 12
# One scam part is enough when the whole text has this many distinct red flags.
FLAGS_FOR_ONE_PART = 3
HIGH_CONFIDENCE = 0.8
# ... or when the model is this sure of the part and the whole has a red flag and a way to reach
# the sender (a link, a phone, an account): a phishing text message in a screenshot.
SURE_PART = 0.9
# (an official service number such as 95566 shown above a bank text is no such way)
NOT_CONTACT = frozenset({ind.MONEY, ind.ID_NUMBER, ind.PHONE_SERVICE})

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")


def _content(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


def parts_of(text: str) -> list[str]:
    """The parts to judge separately ([] when the message is judged whole only)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(text) < LONG_CHARS and len(lines) < MANY_LINES:
        return []
    parts: list[str] = []
    for line in lines:
        pieces = _SENTENCE_END.split(line) if len(line) > LONG_LINE else [line]
        parts.extend(p.strip() for p in pieces if _content(p) >= MIN_PART_CHARS)
    unique = list(dict.fromkeys(parts))
    if len(unique) < 2:
        return []
    return unique[:MAX_PARTS]


def combine(whole: Verdict, parts: list[Verdict], analysis: Analysis) -> Verdict:
    """The verdict on a long message from the verdict on the whole and on each part."""
    if whole.is_scam and whole.risk == HIGH:
        return whole
    scams = [v for v in parts if v.is_scam and v.scam_type]
    if not scams:
        return whole
    votes = Counter(v.scam_type for v in scams)
    code, count = votes.most_common(1)[0]
    flags = sum(analysis.red_flag_counts().values())
    best = max((v for v in scams if v.scam_type == code), key=lambda v: v.confidence)
    contact = any(i.kind not in NOT_CONTACT for i in analysis.indicators)
    sure_with_contact = best.confidence >= SURE_PART and flags >= 1 and contact
    if count < 2 and flags < FLAGS_FOR_ONE_PART and not sure_with_contact:
        return whole
    if whole.is_scam and whole.confidence >= best.confidence:
        return whole
    evidence = flags > 0 or bool(analysis.indicators)
    risk = HIGH if best.confidence >= HIGH_CONFIDENCE and evidence else MEDIUM
    return replace(best, risk=risk, intent=whole.intent)
