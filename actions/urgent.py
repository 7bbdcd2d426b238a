"""The urgent path: money has already gone.

Before anything else the resident is told to call 110 and their bank; then an urgent alert is
stored for their grid's leaders and the staff (the Telegram front end delivers it). The report is
the check the resident just made, if there was one, or a new one made from this message.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.assess import log_report, new_report
from actions.common import call_store, is_payload, latest_text, recent_report_id
from actions.deps import deps
from bot.nlp.assess import assess
from bot.nlp.decision import decide
from bot.replay import URGENT_ALERT, alert_message
from bot.store.repo import StoreUnavailable

logger = logging.getLogger(__name__)

SOURCE_URGENT = "urgent"
# What the report says when the resident only pressed the "我已经转账了" button.
BUTTON_STORY = "居民表示已经向对方转账（点按了“我已经转账了”）。"
ALERT_SAVED_LINE = "\n您的求助已保存，系统恢复后会立即通知网格长和反诈工作人员。"


async def raise_alert(dispatcher: CollectingDispatcher, tracker: Tracker, report_id: int) -> None:
    """Store the urgent alert and tell the resident what to do first."""
    d = deps()
    try:
        await call_store(d.store.add_alert, report_id, alert_message(report_id))
        line = f"\n已通知您所在网格的网格长和反诈工作人员（紧急编号第{report_id}号）。"
    except StoreUnavailable:
        d.spool.put("alert", {"report_id": report_id})
        line = ALERT_SAVED_LINE
    dispatcher.utter_message(response="utter_urgent", alert_line=line)


class ActionUrgentHelp(Action):
    def name(self) -> str:
        return "action_urgent_help"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        d = deps()
        report_id: int | None = None
        try:
            current = await recent_report_id(d.store, tracker)
        except StoreUnavailable:
            current = None
        if current is not None:
            try:
                view = await call_store(
                    d.store.update_report, current, money_lost=True, source=SOURCE_URGENT
                )
                report_id = view.id
            except (StoreUnavailable, LookupError):
                report_id = None
        if report_id is None:
            text = latest_text(tracker)
            text = BUTTON_STORY if is_payload(text) or not text.strip() else text
            analysis = d.analyzer.analyse(text)
            threshold = d.settings.scam_threshold
            verdict = decide(tracker.latest_message, analysis, d.taxonomy, threshold)
            report = new_report(tracker, analysis, assess(verdict), SOURCE_URGENT)
            report = dataclasses.replace(
                report,
                money_lost=True,
                risk="high",
                # If the report is spooled, replaying it raises the alert (bot/replay.py).
                details={**report.details, URGENT_ALERT: True},
            )
            report_id = await log_report(d, report)
        if report_id is None:
            dispatcher.utter_message(
                response="utter_urgent",
                alert_line=ALERT_SAVED_LINE,
            )
        else:
            await raise_alert(dispatcher, tracker, report_id)
        logger.info("urgent path for report %s", report_id)
        return [SlotSet("current_report_id", report_id), SlotSet("report_money_lost", True)]
