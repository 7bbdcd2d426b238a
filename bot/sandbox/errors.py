"""Bot API errors as Telegram reports them.

Every refusal in the sandbox is an :class:`ApiError`, answered as
``{"ok": false, "error_code": N, "description": "..."}`` with the same HTTP status, as the real
Bot API does. Clients such as python-telegram-bot pick the exception class from the status and
read ``parameters.retry_after`` for 429, so both have to be right.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the Bot API refuses: HTTP status, Telegram's description, response parameters."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    """400 with Telegram's prefix: ``bad_request("chat not found")``."""
    return ApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> ApiError:
    """403 with Telegram's prefix, e.g. a bot that left the group."""
    return ApiError(403, f"Forbidden: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    """429 with ``retry_after`` in the response parameters, as a flood limit answers."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


def unauthorized() -> ApiError:
    """401: the token in the URL is not the sandbox bot's."""
    return ApiError(401, "Unauthorized")


def not_found() -> ApiError:
    """404: no such method (or file)."""
    return ApiError(404, "Not Found")


# Descriptions for injected faults that give only a status.
STATUS_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
