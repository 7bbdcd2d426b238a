"""``action_report_status``: "what happened to my report?", answered in words.

A number in the message ("我的举报12号怎么样了", "#12") picks that report, if it is the resident's
own; without one, their latest reports are listed. Whether a number belongs to someone else is not
revealed: it is simply "not found".
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import call_store, latest_text
from actions.deps import deps
from bot.nlp.normalize import normalize
from bot.store.repo import ReportView, StoreUnavailable

SHANGHAI = ZoneInfo("Asia/Shanghai")
LATEST = 3
_NUMBER = re.compile(r"(?<!\d)(\d{1,9})(?!\d)")
STATUSES = ("new", "assigned", "in_review", "confirmed", "dismissed", "answered")


def report_number(text: str) -> int | None:
    """The report number the resident asks about, if they gave one."""
    match = _NUMBER.search(normalize(text).text)
    return int(match.group(1)) if match else None


def verdict_name(report: ReportView, taxonomy: Any) -> str:
    if report.verdict_scam_type in (None, "not_scam"):
        return "不是诈骗"
    try:
        return taxonomy.get(report.verdict_scam_type).name
    except KeyError:
        return "诈骗"


def say_status(dispatcher: CollectingDispatcher, report: ReportView, taxonomy: Any) -> None:
    status = report.status if report.status in STATUSES else "new"
    when = report.created_at.astimezone(SHANGHAI)
    dispatcher.utter_message(
        response=f"utter_status_{status}",
        report_id=report.id,
        reported_on=f"{when.month}月{when.day}日",
        verdict_name=verdict_name(report, taxonomy),
    )


class ActionReportStatus(Action):
    def name(self) -> str:
        return "action_report_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        d = deps()
        number = report_number(latest_text(tracker))
        try:
            if number is not None:
                report = await call_store(d.store.get_report, number)
                if report is None or report.sender_id != tracker.sender_id:
                    dispatcher.utter_message(response="utter_report_not_found", report_id=number)
                    return []
                reports = [report]
            else:
                reports = await call_store(d.store.reports_of, tracker.sender_id, LATEST)
        except StoreUnavailable:
            dispatcher.utter_message(response="utter_store_busy")
            return []
        if not reports:
            dispatcher.utter_message(response="utter_no_reports")
        for report in reports:
            say_status(dispatcher, report, d.taxonomy)
        return []
