"""What the store raises, so that callers can tell "try later" from "this is wrong"."""

from __future__ import annotations

from bot.store.workflow import InvalidTransition


class StoreUnavailable(RuntimeError):
    """The database stayed locked or unreachable for longer than the retry budget.

    Callers that must not lose what they were writing put it in the spool (``bot.store.spool``).
    """


class NotFound(LookupError):
    """A record the call refers to (a report, a chat, an area...) does not exist."""


__all__ = ["InvalidTransition", "NotFound", "StoreUnavailable"]
