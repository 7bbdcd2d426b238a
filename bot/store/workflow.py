"""The life of a report: its statuses and the moves staff may make between them.

Kept apart from the repository so that the dashboard can show which buttons to offer without
touching the database.
"""

from __future__ import annotations

NEW = "new"
ASSIGNED = "assigned"
IN_REVIEW = "in_review"
CONFIRMED = "confirmed"
DISMISSED = "dismissed"
ANSWERED = "answered"

#: For each status, the statuses a report may move to from it.
TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({ASSIGNED, IN_REVIEW, CONFIRMED, DISMISSED}),
    ASSIGNED: frozenset({ASSIGNED, IN_REVIEW, CONFIRMED, DISMISSED}),
    IN_REVIEW: frozenset({CONFIRMED, DISMISSED}),
    CONFIRMED: frozenset({ANSWERED, IN_REVIEW}),
    DISMISSED: frozenset({ANSWERED, IN_REVIEW}),
    ANSWERED: frozenset({IN_REVIEW}),
}

#: Statuses in which staff have given a verdict (``answered`` keeps the verdict it was given).
REVIEWED = frozenset({CONFIRMED, DISMISSED, ANSWERED})


class InvalidTransition(ValueError):
    """A report cannot move from its status to the one asked for."""

    def __init__(self, from_status: str, to_status: str, reason: str | None = None) -> None:
        self.from_status = from_status
        self.to_status = to_status
        message = f"a report cannot move from {from_status!r} to {to_status!r}"
        super().__init__(f"{message}: {reason}" if reason else message)


def allowed(from_status: str) -> frozenset[str]:
    """The statuses a report in ``from_status`` may move to (none for an unknown status)."""
    return TRANSITIONS.get(from_status, frozenset())


def check(from_status: str, to_status: str) -> None:
    """Raise ``InvalidTransition`` unless the move is allowed."""
    if to_status not in allowed(from_status):
        raise InvalidTransition(from_status, to_status)
