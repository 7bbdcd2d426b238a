"""Red flags and indicators in one message, found with spaCy over the normalised text.

The spaCy pipeline is ``spacy.blank("zh")`` with a Jieba segmenter of its own, into which every
red-flag phrase and app name is loaded as a word, so that a phrase comes out as a token and the
``SpanRuler`` phrase matcher sees it. Every position returned is on the text the resident sent.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import jieba
import spacy
import yaml
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

from bot.nlp.indicators import PERSONAL_KINDS, find_indicators, mask, mask_span
from bot.nlp.normalize import Normalized, normalize
from bot.nlp.taxonomy import Taxonomy

APP = "app"
RED_FLAGS_KEY = "red_flags"
APPS_KEY = "apps"
# Words that come before "APP" without being part of its name ("下载APP", "这个APP").
_APP_NAME_NOISE = (
    "下载",
    "安装",
    "打开",
    "注册",
    "登录",
    "登陆",
    "使用",
    "用",
    "在",
    "叫",
    "个",
    "一个",
    "这个",
    "那个",
    "款",
    "的",
    "去",
    "上",
    "点",
)
# Jieba's dictionary frequencies reach a few hundred thousand; this makes a phrase win a split.
_USER_WORD_FREQ = 2_000_000

jieba.setLogLevel(logging.WARNING)


@dataclass(frozen=True)
class RedFlag:
    """A red-flag phrase of a scam type found in the message."""

    code: str
    phrase: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Indicator:
    """A phone, link, account, amount or app name found in the message."""

    kind: str
    value: str
    masked: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Analysis:
    """What the extractors found in one message; offsets are on ``text``."""

    text: str
    normalized: str
    red_flags: tuple[RedFlag, ...]
    indicators: tuple[Indicator, ...]

    def red_flag_counts(self) -> Counter[str]:
        """Distinct red-flag phrases per scam type code, in the order they first appear (ties in
        ``most_common`` go to the earlier type, the same on every run)."""
        distinct = dict.fromkeys((f.code, f.phrase) for f in self.red_flags)
        return Counter(code for code, _ in distinct)

    def masked_text(self) -> str:
        """The message with personal indicators starred, same length (offsets stay valid)."""
        chars = list(self.text)
        for ind in self.indicators:
            if ind.kind in PERSONAL_KINDS:
                chars[ind.start : ind.end] = mask_span(ind.kind, ind.text)
        return "".join(chars)

    def red_flags_dict(self) -> list[dict]:
        return [asdict(f) for f in self.red_flags]

    def indicators_dict(self, *, reveal: bool = False) -> list[dict]:
        """Indicators as dictionaries; personal values masked unless ``reveal`` is set."""
        rows = []
        for ind in self.indicators:
            row = asdict(ind)
            if not reveal:
                row["value"] = ind.masked
                row["text"] = mask_span(ind.kind, ind.text)
            rows.append(row)
        return rows


def load_app_names(lookups_dir: Path) -> tuple[str, ...]:
    """The ``app_name`` lookup table, shared with Rasa's lookup features."""
    names: list[str] = []
    for path in sorted(Path(lookups_dir).glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if block.get("lookup") == "app_name":
                for line in str(block.get("examples", "")).splitlines():
                    line = line.strip()
                    if line.startswith("- ") and line[2:].strip():
                        names.append(line[2:].strip())
    return tuple(dict.fromkeys(names))


class Analyzer:
    """Builds the spaCy pipeline once; ``analyse`` is then safe to call for every message."""

    def __init__(self, taxonomy: Taxonomy, app_names: tuple[str, ...]) -> None:
        self.taxonomy = taxonomy
        self.nlp = self._build(taxonomy, app_names)
        self._app_matcher = Matcher(self.nlp.vocab)
        self._app_matcher.add(
            "app_suffix",
            [
                [
                    {
                        "TEXT": {"REGEX": r"^[\u4e00-\u9fffA-Za-z0-9]+$"},
                        "LOWER": {"NOT_IN": ["app"]},
                        "OP": "{1,4}",
                    },
                    {"LOWER": "app"},
                ]
            ],
            greedy="LONGEST",
        )

    @staticmethod
    def _build(taxonomy: Taxonomy, app_names: tuple[str, ...]) -> Language:
        nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
        segmenter = jieba.Tokenizer()
        phrases = {p for t in taxonomy.scam_types for p in t.red_flags} | set(app_names)
        for phrase in sorted(phrases):
            segmenter.add_word(normalize(phrase).text, freq=_USER_WORD_FREQ)
        segmenter.add_word("app", freq=_USER_WORD_FREQ)
        segmenter.add_word("APP", freq=_USER_WORD_FREQ)
        nlp.tokenizer.jieba_seg = segmenter
        flags = nlp.add_pipe(
            "span_ruler", name="red_flag_ruler", config={"spans_key": RED_FLAGS_KEY}
        )
        flags.add_patterns(
            [
                {"label": t.code, "pattern": normalize(p).text, "id": p}
                for t in taxonomy.scam_types
                for p in t.red_flags
            ]
        )
        apps = nlp.add_pipe(
            "span_ruler",
            name="app_ruler",
            config={"spans_key": APPS_KEY, "phrase_matcher_attr": "LOWER"},
        )
        apps.add_patterns([{"label": APP, "pattern": name} for name in app_names])
        return nlp

    def analyse(self, text: str) -> Analysis:
        """Normalise ``text`` and find its red flags and indicators."""
        norm = normalize(text or "")
        doc = self.nlp(norm.text)
        flags = tuple(
            RedFlag(span.label_, span.id_, *self._source(norm, span.start_char, span.end_char))
            for span in sorted(doc.spans[RED_FLAGS_KEY], key=lambda s: s.start_char)
        )
        found = [
            Indicator(f.kind, f.value, mask(f.kind, f.value), *self._source(norm, f.start, f.end))
            for f in find_indicators(norm.text)
        ]
        found.extend(self._apps(doc, norm, found))
        return Analysis(text, norm.text, flags, tuple(sorted(found, key=lambda i: i.start)))

    def _apps(self, doc: Doc, norm: Normalized, taken: list[Indicator]) -> list[Indicator]:
        names: dict[str, tuple[int, int]] = {}
        for span in doc.spans[APPS_KEY]:
            names.setdefault(span.text.lower(), (span.start_char, span.end_char))
        for _, start, end in self._app_matcher(doc):
            words = [t.text for t in doc[start : end - 1]]
            # "我在网上下载金牛任务宝APP": the name starts after the last verb or filler word.
            cut = max((i + 1 for i, w in enumerate(words) if w in _APP_NAME_NOISE), default=0)
            name_start = start + cut
            name = doc[name_start : end - 1].text
            if len(name) < 2 or name.isdigit():
                continue
            first = doc[name_start]
            names.setdefault(name.lower(), (first.idx, first.idx + len(name)))
        apps = []
        for name, (start, end) in names.items():
            src = self._source(norm, start, end)
            if any(i.start < src[2] and src[1] < i.end for i in taken):
                continue
            apps.append(Indicator(APP, name, name, *src))
        return apps

    @staticmethod
    def _source(norm: Normalized, start: int, end: int) -> tuple[str, int, int]:
        s, e = norm.to_source(start, end)
        return norm.source[s:e], s, e


@lru_cache(maxsize=2)
def get_analyzer(taxonomy_path: Path, lookups_dir: Path) -> Analyzer:
    """One analyzer per process: building the matcher costs about a second."""
    from bot.nlp.taxonomy import load_taxonomy

    return Analyzer(load_taxonomy(taxonomy_path), load_app_names(lookups_dir))
