"""Red flags marked in a resident's message, safely.

The message is a scammer's text: it may hold markup meant to run in a reviewer's browser. So
the whole text is escaped here, piece by piece, and the only markup added is ours:
``<mark class="flag">`` around every place a red-flag phrase occurs. Occurrences that overlap
or nest (``做任务`` inside ``下载软件做任务``) are merged into one mark, so marks never nest and
the longest phrase always shows whole. Latin letters match whatever their case, as the model
matched them on the lowercased text.
"""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup, escape

MARK_OPEN = Markup('<mark class="flag">')
MARK_CLOSE = Markup("</mark>")


def _fold(text: str) -> str:
    """Lowercase one character at a time, keeping the length (offsets stay those of ``text``);
    the rare letters whose lowercase is longer (such as 'İ') are left as they are."""
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)


def flag_spans(text: str, phrases: Iterable[str]) -> list[tuple[int, int]]:
    """Where the phrases occur in ``text``: sorted ``(start, end)`` spans, overlaps merged."""
    folded = _fold(text)
    wanted = {_fold(p) for p in phrases if isinstance(p, str) and p.strip()}
    spans: list[tuple[int, int]] = []
    for phrase in sorted(wanted):
        start = folded.find(phrase)
        while start != -1:
            spans.append((start, start + len(phrase)))
            start = folded.find(phrase, start + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, phrases: Iterable[str]) -> Markup:
    """``text`` escaped, with every occurrence of each phrase in ``<mark class="flag">``."""
    out: list[str] = []
    done = 0
    for start, end in flag_spans(text, phrases):
        out.append(escape(text[done:start]))
        out.append(MARK_OPEN + escape(text[start:end]) + MARK_CLOSE)
        done = end
    out.append(escape(text[done:]))
    return Markup("").join(out)


def flag_phrases(red_flags: Iterable[object]) -> list[str]:
    """The phrases to mark from a report's ``red_flags``: each flag's phrase and the words the
    resident actually wrote for it (``text``), which may differ from the normalised phrase."""
    found: dict[str, None] = {}
    for flag in red_flags:
        if isinstance(flag, dict):
            for key in ("text", "phrase"):
                value = flag.get(key)
                if isinstance(value, str) and value.strip():
                    found[value] = None
    return list(found)
