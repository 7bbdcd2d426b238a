"""Replaying what the actions spooled while the database was down.

An action that cannot reach the store writes the report (or the alert) to the spool
(``bot/store/spool.py``) and still answers the resident. ``replay_spool`` puts them into the store
in the order they were written, once it answers again; ``make run`` calls it every few seconds. A
spooled urgent report raises its alert when it is replayed.
"""

from __future__ import annotations

import logging

from bot.store.repo import NewReport, Store, StoreUnavailable
from bot.store.spool import Spool

logger = logging.getLogger(__name__)

# Set in a report's details when its alert is still to be raised.
URGENT_ALERT = "urgent_alert"


def alert_message(report_id: int) -> str:
    """The alert for the grid leaders and staff: no personal data, the report number to open."""
    return f"紧急：一位居民表示已经向骗子转账，请尽快联系并协助止付（举报第{report_id}号）。"


def replay_spool(store: Store, spool: Spool) -> int:
    """Store everything spooled; stops at the first failure (the rest waits). The count stored."""

    def handle(kind: str, record: dict) -> None:
        if kind == "report":
            report = NewReport.from_dict(record)
            view = store.add_report(report)
            if report.details.get(URGENT_ALERT) and report.money_lost:
                store.add_alert(view.id, alert_message(view.id))
        elif kind == "alert":
            store.add_alert(int(record["report_id"]), alert_message(int(record["report_id"])))
        else:
            logger.error("unknown spool record kind %r left in the spool", kind)
            raise ValueError(kind)

    try:
        count = spool.drain(handle)
    except StoreUnavailable:
        logger.info("store still unavailable: spool kept")
        return 0
    if count:
        logger.info("replayed %d spooled records into the store", count)
    return count
