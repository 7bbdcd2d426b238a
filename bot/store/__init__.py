"""The store: residents, reports and their review, indicators, the inbox, alerts and the audit log.

``Store`` (``repo``) is the API the custom actions, the bot and the dashboard call; ``db``
creates engines and runs the Alembic migrations in ``migrations/``; ``similarity`` finds
near-duplicate messages; ``spool`` keeps writes while the database is away.
"""

from __future__ import annotations

from bot.store.db import current, downgrade, make_engine, upgrade
from bot.store.errors import InvalidTransition, NotFound, StoreUnavailable
from bot.store.repo import Store
from bot.store.spool import Spool
from bot.store.views import (
    AlertView,
    AreaView,
    ChatView,
    EventView,
    InboundView,
    IndicatorView,
    NewReport,
    ReportView,
    ResidentView,
    SeenBefore,
    UserView,
)

__all__ = [
    "AlertView",
    "AreaView",
    "ChatView",
    "EventView",
    "InboundView",
    "IndicatorView",
    "InvalidTransition",
    "NewReport",
    "NotFound",
    "ReportView",
    "ResidentView",
    "SeenBefore",
    "Spool",
    "Store",
    "StoreUnavailable",
    "UserView",
    "current",
    "downgrade",
    "make_engine",
    "upgrade",
]
