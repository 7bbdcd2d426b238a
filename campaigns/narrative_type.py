"""The scam type of a police case narrative (简要案情), from several opinions in turn.

The NLU model learnt from the messages residents receive; a police retelling in the third person
("事主某某接到自称……的电话") reads to it as an ordinary text, so on the whole narrative it almost
never sees a scam. The opinions, asked in this order, the first that gives a type deciding:

1. the model on the whole narrative (long ones also sentence by sentence, ``bot.nlp.segments``);
2. the model on the words the narrative quotes (``narrative.quoted_speech``): the scammer's own;
3. the red flags of the taxonomy found in the narrative: the type with the most distinct ones,
   at least ``FLAG_FLOOR`` and ``LEAD_RATIO`` times as many as the next type;
4. the keywords police use to name the scam (``narrative_keywords.yml``), scored the same way;
5. the model on each clause: a type that the model is sure of (``CLAUSE_CONFIDENCE``) in some
   clause, no other type being sure anywhere.

A wrong type puts a case under another scam's peaks, while an empty one is listed for a person to
complete; so the phrase opinions must lead clearly, and one that the other contradicts (it leads
for a type of which the other found nothing) gives no type at all.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bot.nlp.normalize import normalize
from bot.nlp.taxonomy import NOT_SCAM
from campaigns.narrative import quoted_speech

if TYPE_CHECKING:
    from bot.nlp.classify import Classifier
    from bot.nlp.decision import Verdict

KEYWORDS_FILE = Path(__file__).with_name("narrative_keywords.yml")
KINDS = ("names", "signs", "roles")
NAME_WEIGHT = 2
SIGN_WEIGHT = 1
#: The least score that can decide, for red flags (distinct phrases) and for keywords.
FLAG_FLOOR = 2
KEYWORD_FLOOR = 2
#: The leading type must have this many times the score of the next one.
LEAD_RATIO = 2.0
#: How sure the model must be of a clause for the clause to count.
CLAUSE_CONFIDENCE = 0.9
MIN_CLAUSE_LETTERS = 4
MAX_CLAUSES = 40
#: Clauses of one narrative parsed at the same time (the importer already runs several rows).
CLAUSE_CONCURRENCY = 4

MODEL = "model"
QUOTED = "quoted"
RED_FLAGS = "red_flags"
KEYWORDS = "keywords"
CLAUSES = "clauses"

_QUOTE_SPAN = re.compile(r"“[^“”]*”|「[^「」]*」|\"[^\"]*\"|‘[^‘’]*’")
_CLAUSE_END = re.compile(r"[，,。；;！!？?：:\n]")


class KeywordTableError(ValueError):
    """The keyword file is unreadable or not in the expected shape."""


@dataclass(frozen=True)
class Keyword:
    """One word of a scam type and what kind of word it is (``KINDS``)."""

    word: str
    kind: str

    def weight(self, quoted: bool) -> int:
        if self.kind == "names" or (self.kind == "roles" and quoted):
            return NAME_WEIGHT
        return SIGN_WEIGHT


@dataclass(frozen=True)
class KeywordScores:
    """A narrative's keyword score per type and the words found, per type."""

    scores: Counter[str]
    found: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class KeywordTable:
    """The keywords of each scam type code."""

    keywords: Mapping[str, tuple[Keyword, ...]]

    def score(self, text: str) -> KeywordScores:
        """Each type's score: the weights of its distinct words found in ``text``.

        A word found only inside a longer word of the same type (新号码 in 换了新号码) does not
        count again; a role counts as a name when one of its occurrences is quoted.
        """
        norm = normalize(text or "").text.lower()
        quoted = [m.span() for m in _QUOTE_SPAN.finditer(norm)]
        scores: Counter[str] = Counter()
        found: dict[str, tuple[str, ...]] = {}
        for code, words in self.keywords.items():
            spans: list[tuple[int, int, Keyword]] = []
            for keyword in words:
                start = norm.find(keyword.word)
                while start >= 0:
                    spans.append((start, start + len(keyword.word), keyword))
                    start = norm.find(keyword.word, start + 1)
            kept = [
                (s, e, k)
                for s, e, k in spans
                if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _k in spans)
            ]
            weights: dict[str, int] = {}
            for s, e, keyword in kept:
                inside = any(qs < s and e < qe for qs, qe in quoted)
                weight = keyword.weight(inside)
                weights[keyword.word] = max(weights.get(keyword.word, 0), weight)
            if weights:
                scores[code] = sum(weights.values())
                found[code] = tuple(weights)
        return KeywordScores(scores, found)


def load_keywords(path: Path = KEYWORDS_FILE, codes: Iterable[str] | None = None) -> KeywordTable:
    """Read and check the keyword file; ``codes`` are the scam type codes it may name."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeywordTableError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise KeywordTableError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict) or not raw:
        raise KeywordTableError(f"{path}: expected a mapping of scam type codes to keywords")
    known = None if codes is None else set(codes) - {NOT_SCAM}
    table: dict[str, tuple[Keyword, ...]] = {}
    owner: dict[str, str] = {}
    for code, entry in raw.items():
        code = str(code)
        if known is not None and code not in known:
            raise KeywordTableError(f"{path}: “{code}” is not a scam type code")
        if not isinstance(entry, dict) or not entry:
            raise KeywordTableError(f"{path}: {code}: expected lists under {', '.join(KINDS)}")
        words: list[Keyword] = []
        for kind, values in entry.items():
            if kind not in KINDS:
                raise KeywordTableError(
                    f"{path}: {code}: unknown key “{kind}” (use {', '.join(KINDS)})"
                )
            if not isinstance(values, list):
                raise KeywordTableError(f"{path}: {code}.{kind}: expected a list of words")
            for value in values:
                word = normalize(str(value) if value is not None else "").text.strip().lower()
                if not word or value is None or isinstance(value, bool):
                    raise KeywordTableError(f"{path}: {code}.{kind}: an empty word")
                if word in owner:
                    raise KeywordTableError(
                        f"{path}: “{word}” is listed for both {owner[word]} and {code}"
                    )
                owner[word] = code
                words.append(Keyword(word, kind))
        table[code] = tuple(words)
    return KeywordTable(table)


@lru_cache(maxsize=4)
def default_keywords(path: Path = KEYWORDS_FILE) -> KeywordTable:
    """The keyword file shipped with the code, read once per process."""
    return load_keywords(path)


def leader(scores: Mapping[str, int], floor: int, ratio: float = LEAD_RATIO) -> str | None:
    """The type whose score is at least ``floor`` and ``ratio`` times any other's, if one is."""
    ranked = sorted(((s, c) for c, s in scores.items() if s > 0), key=lambda sc: -sc[0])
    if not ranked or ranked[0][0] < floor:
        return None
    if len(ranked) > 1 and ranked[0][0] < ratio * ranked[1][0]:
        return None
    return ranked[0][1]


@dataclass(frozen=True)
class TypeReading:
    """The type read from a narrative and which opinion gave it."""

    code: str
    source: str


def phrase_opinion(flags: Mapping[str, int], keywords: Mapping[str, int]) -> TypeReading | None:
    """The type red flags (distinct per type) or keyword scores give, unless contradicted.

    Red flags first; then keywords. An opinion is dropped (and no type given) when the other
    clearly leads for another type and found nothing at all of this one.
    """
    by_flags = leader(flags, FLAG_FLOOR)
    by_keywords = leader(keywords, KEYWORD_FLOOR)
    if by_flags is not None:
        if by_keywords not in (None, by_flags) and not keywords.get(by_flags):
            return None
        return TypeReading(by_flags, RED_FLAGS)
    if by_keywords is not None:
        flag_best = max(flags.items(), key=lambda item: item[1], default=(None, 0))
        if (
            flag_best[1] >= FLAG_FLOOR
            and flag_best[0] != by_keywords
            and not flags.get(by_keywords)
        ):
            return None
        return TypeReading(by_keywords, KEYWORDS)
    return None


def clauses_of(text: str) -> list[str]:
    """The clauses of a narrative (between commas and stops) with enough letters to judge."""
    parts = (p.strip() for p in _CLAUSE_END.split(text or ""))
    useful = [p for p in parts if sum(ch.isalpha() for ch in p) >= MIN_CLAUSE_LETTERS]
    return list(dict.fromkeys(useful))[:MAX_CLAUSES]


def clause_opinion(
    verdicts: Sequence[Verdict], flags: Mapping[str, int], keywords: Mapping[str, int]
) -> TypeReading | None:
    """The one type the model is sure of in some clause, if no other evidence points elsewhere."""
    sure = {
        v.scam_type
        for v in verdicts
        if v.is_scam and v.scam_type != NOT_SCAM and v.confidence >= CLAUSE_CONFIDENCE
    }
    if len(sure) != 1:
        return None
    (code,) = sure
    for other in (leader(flags, FLAG_FLOOR), leader(keywords, KEYWORD_FLOOR)):
        if other is not None and other != code:
            return None
    return TypeReading(code, CLAUSES)


def _scam(verdict: Verdict) -> str | None:
    return verdict.scam_type if verdict.is_scam and verdict.scam_type != NOT_SCAM else None


async def read_type(
    classifier: Classifier, text: str, keywords: KeywordTable | None = None
) -> TypeReading | None:
    """The scam type of a narrative and the opinion it came from; ``None`` if none is clear.

    Raises ``RasaUnavailable`` as the classifier does.
    """
    table = keywords if keywords is not None else default_keywords()
    whole = await classifier.classify(text)
    code = _scam(whole.verdict)
    if code is not None:
        return TypeReading(code, MODEL)
    quoted = quoted_speech(text)
    if quoted:
        code = _scam((await classifier.classify(quoted)).verdict)
        if code is not None:
            return TypeReading(code, QUOTED)
    flags = whole.analysis.red_flag_counts()
    words = table.score(text).scores
    reading = phrase_opinion(flags, words)
    if reading is not None:
        return reading
    gate = asyncio.Semaphore(CLAUSE_CONCURRENCY)

    async def judge(clause: str) -> Verdict:
        async with gate:
            return (await classifier.classify(clause)).verdict

    verdicts = await asyncio.gather(*(judge(c) for c in clauses_of(text)))
    return clause_opinion(verdicts, flags, words)


__all__ = [
    "CLAUSES",
    "KEYWORDS",
    "KEYWORDS_FILE",
    "MODEL",
    "QUOTED",
    "RED_FLAGS",
    "Keyword",
    "KeywordScores",
    "KeywordTable",
    "KeywordTableError",
    "TypeReading",
    "clause_opinion",
    "clauses_of",
    "default_keywords",
    "leader",
    "load_keywords",
    "phrase_opinion",
    "read_type",
]
