"""Rasa's replies as Telegram messages: text within Telegram's limit, buttons as inline keyboards.

A button's payload (``/report_scam``, ``/subscribe{"age_group":"60_plus"}``) becomes its
callback data and goes back to Rasa as the message when pressed. Telegram allows 64 bytes of
callback data; a longer payload is left out rather than sent broken.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64
BUTTONS_PER_ROW = 2


@dataclass(frozen=True)
class Outgoing:
    """One message to send."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


def _keyboard(buttons: list[dict]) -> InlineKeyboardMarkup | None:
    usable = [
        InlineKeyboardButton(str(b.get("title") or "")[:64], callback_data=str(b["payload"]))
        for b in buttons
        if b.get("payload") and len(str(b["payload"]).encode()) <= MAX_CALLBACK_BYTES
    ]
    if not usable:
        return None
    rows = [usable[i : i + BUTTONS_PER_ROW] for i in range(0, len(usable), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a long text at line breaks (or hard, if a line is longer than the limit)."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def to_telegram(replies: list[dict]) -> list[Outgoing]:
    """Rasa's REST replies as messages; the buttons go with the last part of a long text."""
    out: list[Outgoing] = []
    for reply in replies:
        text = str(reply.get("text") or "").strip()
        if not text:
            continue
        parts = split_text(text)
        keyboard = _keyboard(reply.get("buttons") or [])
        out.extend(Outgoing(p) for p in parts[:-1])
        out.append(Outgoing(parts[-1], keyboard))
    return out
