"""Text normalisation for Chinese chat messages, with a map back to the original offsets.

Scam messages dodge filters with full-width letters (ＡＰＰ), traditional characters
(轉賬), zero-width characters and spaced-out words (刷 单). Everything downstream (the
Rasa pipeline, red-flag matching, indicator extraction) works on one normalised form,
and every position found there maps back to the text the resident sent, so replies and
pages can quote and highlight it.

This module must stay importable from the Rasa environment too
(``rasa_addons.normalizer`` uses it): standard library and ``opencc`` only.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc

# Invisible characters that scammers insert between words to break keyword filters.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
# Traditional and variant forms OpenCC keeps but residents and scammers mix freely.
_FOLD = {"帐": "账"}


@dataclass(frozen=True)
class Normalized:
    """A normalised text and, for each of its characters, the index of the source character."""

    text: str
    origin: tuple[int, ...]
    source: str

    def to_source(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalised text to the matching span of the source text."""
        if start >= end or not self.origin:
            pos = self.origin[start] if start < len(self.origin) else len(self.source)
            return pos, pos
        return self.origin[start], self.origin[end - 1] + 1


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _width_fold(ch: str) -> str:
    code = ord(ch)
    if 0xFF01 <= code <= 0xFF5E:  # full-width ASCII block
        return chr(code - 0xFEE0)
    if code == 0x3000:  # ideographic space
        return " "
    return ch


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0xFF00 <= code <= 0xFFEF
    )


def _to_simplified(chars: list[str]) -> list[str]:
    """Convert to simplified characters, one output character per input character."""
    joined = "".join(chars)
    converted = _converter().convert(joined)
    if len(converted) == len(joined):
        return list(converted)
    # A phrase rule changed the length: fall back to character-by-character conversion
    # so that the offset map stays exact.
    out = []
    for ch in chars:
        conv = _converter().convert(ch)
        out.append(conv if len(conv) == 1 else ch)
    return out


def normalize(text: str) -> Normalized:
    """Fold width, convert to simplified, drop invisible characters and close up spacing."""
    kept: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch in _INVISIBLE or (unicodedata.category(ch) == "Cc" and ch not in "\n\t\r"):
            continue
        kept.append(_width_fold(ch))
        origin.append(i)
    kept = [_FOLD.get(c, c) for c in _to_simplified(kept)]

    out: list[str] = []
    out_origin: list[int] = []
    i = 0
    while i < len(kept):
        if not kept[i].isspace():
            out.append(kept[i])
            out_origin.append(origin[i])
            i += 1
            continue
        j = i
        while j < len(kept) and kept[j].isspace():
            j += 1
        before = out[-1] if out else ""
        after = kept[j] if j < len(kept) else ""
        # Spaces in Chinese text are filler ("刷 单", "加 V 信"); between Latin words they count.
        if before and after and not (_is_cjk(before) or _is_cjk(after)):
            out.append(" ")
            out_origin.append(origin[i])
        i = j
    return Normalized("".join(out), tuple(out_origin), text)


def normalize_text(text: str) -> str:
    """The normalised form alone, for callers that need no offsets."""
    return normalize(text).text
