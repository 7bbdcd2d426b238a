"""A local Telegram-compatible Bot API server, so the bot runs and is tested without Telegram.

Without a token the product points python-telegram-bot at this sandbox; the tests drive the
real library against it. ``SandboxState`` holds everything in memory, ``create_app`` serves it
(mountable in the main app), and ``python -m bot.sandbox`` runs it alone.
"""

from __future__ import annotations

from bot.sandbox.models import RateLimits
from bot.sandbox.server import create_app
from bot.sandbox.state import SandboxState

__all__ = ["RateLimits", "SandboxState", "create_app"]
