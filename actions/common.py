"""Helpers shared by the actions: who is talking, store calls off the event loop, reply lines.

Store calls are synchronous SQLAlchemy; ``call_store`` runs them in a worker thread so one slow
write (SQLite waiting for a lock) does not stall every other conversation on the action server.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from rasa_sdk import Tracker

from bot.nlp.analysis import Analysis

logger = logging.getLogger(__name__)

T = TypeVar("T")

# At most this many red-flag phrases are quoted back to the resident.
MAX_QUOTED_FLAGS = 4
_MEANINGFUL = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")
_PAYLOAD = re.compile(r"^/\w+(\{.*\})?$", re.S)


def metadata(tracker: Tracker) -> dict:
    """The metadata the front end sent with the message (channel, chat, inbox id)."""
    meta = (tracker.latest_message or {}).get("metadata") or {}
    return meta if isinstance(meta, dict) else {}


def channel_of(tracker: Tracker) -> str:
    return str(metadata(tracker).get("channel") or "rest")[:32]


def inbound_id_of(tracker: Tracker) -> int | None:
    value = metadata(tracker).get("inbound_id")
    return value if isinstance(value, int) and value > 0 else None


def chat_of(tracker: Tracker) -> str | None:
    value = metadata(tracker).get("chat_id")
    return str(value)[:64] if value is not None else None


def latest_text(tracker: Tracker) -> str:
    """What the resident sent, as they wrote it.

    Rasa's parse result carries the *normalised* text (the pipeline's first component rewrites
    it); the user event keeps the original, which is what reports store and replies quote.
    """
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            return str(event.get("text") or "")
    return str((tracker.latest_message or {}).get("text") or "")


def original_of(tracker: Tracker, value: object) -> str:
    """A slot filled from the message text holds the normalised text; give back the original."""
    text = str(value if value is not None else "")
    parsed = str((tracker.latest_message or {}).get("text") or "")
    return latest_text(tracker) if text == parsed else text


def latest_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def is_payload(text: str) -> bool:
    """A button press (``/intent{...}``) rather than words the resident typed."""
    return bool(_PAYLOAD.match(text.strip()))


def has_content(text: str) -> bool:
    """True when there is something to read: a letter, digit or Chinese character."""
    return bool(_MEANINGFUL.search(text or ""))


async def call_store(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a store method in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


# A report made this recently in the same conversation is the one a follow-up is about
# ("我已经转账了" or "补充举报详情" just after a warning); an older one is not.
FOLLOW_UP_WINDOW = timedelta(hours=1)


async def recent_report_id(store: Any, tracker: Tracker) -> int | None:
    """The report this conversation made in the last hour (``current_report_id``), if any."""
    current = tracker.get_slot("current_report_id")
    if not isinstance(current, int):
        return None
    report = await call_store(store.get_report, current)
    if report is None or report.sender_id != tracker.sender_id:
        return None
    if datetime.now(timezone.utc) - report.created_at > FOLLOW_UP_WINDOW:
        return None
    return report.id


def flags_line(analysis: Analysis) -> str:
    """The red flags found, quoted as the resident wrote them; empty when there are none."""
    quoted: list[str] = []
    for flag in analysis.red_flags:
        if flag.text not in quoted:
            quoted.append(flag.text)
        if len(quoted) == MAX_QUOTED_FLAGS:
            break
    if not quoted:
        return ""
    return "\n您发来的内容里有这些危险信号：" + "".join(f"“{q}”" for q in quoted) + "。"


def quote(text: str, limit: int = 20) -> str:
    """A short quote of what the resident sent, for a re-ask."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
