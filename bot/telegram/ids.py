"""Conversation ids: one Rasa conversation per Telegram chat and user.

A resident talks to the bot privately and in their grid group; each is its own conversation
(a report form started in the group does not continue in private), so the sender id Rasa sees
is ``tg:<chat id>:<user id>``. The chat id in it is where answers go back later (an answer to a
report, a reply that had to wait).
"""

from __future__ import annotations

PREFIX = "tg"


def sender_id(chat_id: int, user_id: int) -> str:
    return f"{PREFIX}:{chat_id}:{user_id}"


def chat_of_sender(sender: str) -> int | None:
    """The Telegram chat of a conversation id, or None if it is not a Telegram one."""
    parts = sender.split(":")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None
