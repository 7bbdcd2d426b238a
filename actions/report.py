"""The report form (``report_form``) and what happens when it is done.

The form asks, one at a time: what happened, the other side's phone, account or link, whether
money was transferred, how much (only if it was) and when. ``ValidateReportForm`` checks each
answer with ``bot.nlp.answers``; an answer it cannot use is cleared and ``report_invalid`` names
the slot, so the slot's ask action (``action_ask_<slot>``) re-asks with the reason instead of
repeating the plain question. "取消" at any question ends the form with nothing recorded.

``action_submit_report`` writes the report (or completes the one an earlier check logged), and when
money has gone raises the urgent alert before anything else is said.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from abc import ABC, abstractmethod
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.assess import log_report, new_report
from actions.common import (
    call_store,
    has_content,
    latest_intent,
    original_of,
    quote,
    recent_report_id,
)
from actions.deps import deps
from actions.urgent import ALERT_SAVED_LINE, raise_alert
from bot.nlp.answers import is_cancel, is_none_answer, parse_amount, parse_when, parse_yes_no
from bot.nlp.assess import assess
from bot.nlp.decision import decide
from bot.replay import URGENT_ALERT
from bot.store.repo import StoreUnavailable

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORM = "report_form"
STORY = "report_story"
CONTACT = "report_contact"
MONEY = "report_money_lost"
AMOUNT = "report_amount"
WHEN = "report_when"
CANCELLED = "report_cancelled"
INVALID = "report_invalid"
INVALID_VALUE = "report_invalid_value"
CURRENT = "current_report_id"
FORM_SLOTS = (STORY, CONTACT, MONEY, AMOUNT, WHEN)
UNKNOWN = "unknown"
NONE = "none"
SOURCE_FORM = "report_form"
# A story needs this many readable characters (Chinese, letters or digits).
MIN_STORY_CHARS = 4
MAX_STORY_CHARS = 4000
CONTACT_KINDS = frozenset(
    {"phone_mobile", "phone_landline", "phone_service", "link", "bank_card", "qq", "wechat", "app"}
)


_AMOUNT_HINT = re.compile(r"\d{2,}|[元块万千百¥]|rmb", re.IGNORECASE)


def _readable(text: str) -> int:
    return sum(1 for ch in text if ch.isalnum())


def _invalid(slot: str, value: str = "") -> dict[str, Any]:
    return {slot: None, INVALID: slot, INVALID_VALUE: value}


def _cancel(slot: str) -> dict[str, Any]:
    return {slot: None, CANCELLED: True}


class ValidateReportForm(FormValidationAction):
    def name(self) -> str:
        return "validate_report_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        if tracker.get_slot(CANCELLED):
            return []
        slots = [STORY, CONTACT, MONEY]
        if tracker.get_slot(MONEY) is True:
            slots.append(AMOUNT)
        slots.append(WHEN)
        return slots

    def validate_report_story(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        text = original_of(tracker, value)
        if is_cancel(text):
            return _cancel(STORY)
        if not has_content(text) or _readable(text) < MIN_STORY_CHARS:
            return _invalid(STORY)
        return {STORY: text.strip()[:MAX_STORY_CHARS], INVALID: None}

    def validate_report_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        text = original_of(tracker, value)
        if is_cancel(text):
            return _cancel(CONTACT)
        if is_none_answer(text):
            return {CONTACT: NONE, INVALID: None}
        analysis = deps().analyzer.analyse(text[:MAX_STORY_CHARS])
        if not any(i.kind in CONTACT_KINDS for i in analysis.indicators):
            return _invalid(CONTACT, quote(analysis.masked_text()))
        return {CONTACT: text.strip()[:MAX_STORY_CHARS], INVALID: None}

    def validate_report_money_lost(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        text = original_of(tracker, value)
        if is_cancel(text):
            return _cancel(MONEY)
        intent = latest_intent(tracker)
        answer = True if intent == "affirm" else False if intent == "deny" else None
        if text.startswith("/") and answer is None:
            answer = {"/affirm": True, "/deny": False}.get(text.strip())
        if not text.startswith("/"):
            answer = parse_yes_no(text)
            if answer is None and intent in ("affirm", "deny"):
                answer = intent == "affirm"
        if answer is None:
            return _invalid(MONEY)
        slots: dict[str, Any] = {MONEY: answer, INVALID: None}
        # "转了3000" answers the amount too; a bare "1" (yes) is not an amount.
        amount = parse_amount(text) if answer and _AMOUNT_HINT.search(text) else None
        if amount is not None:
            slots[AMOUNT] = str(amount)  # "转了3000": the amount question is skipped
        return slots

    def validate_report_amount(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        text = original_of(tracker, value)
        if is_cancel(text):
            return _cancel(AMOUNT)
        if is_none_answer(text):
            return {AMOUNT: UNKNOWN, INVALID: None}
        amount = parse_amount(text)
        if amount is None:
            return _invalid(AMOUNT)
        return {AMOUNT: str(amount), INVALID: None}

    def validate_report_when(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        text = original_of(tracker, value)
        if is_cancel(text):
            return _cancel(WHEN)
        if is_none_answer(text):
            return {WHEN: UNKNOWN, INVALID: None}
        when = parse_when(text, datetime.now(SHANGHAI))
        if when is None:
            return _invalid(WHEN)
        return {WHEN: when.at.isoformat(), INVALID: None}


class AskSlot(Action, ABC):
    """Ask for a slot: the plain question, or the re-ask when the last answer was not usable."""

    @property
    @abstractmethod
    def slot(self) -> str: ...

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot(INVALID) == self.slot:
            dispatcher.utter_message(
                response=f"utter_invalid_{self.slot}",
                value=tracker.get_slot(INVALID_VALUE) or "",
            )
            return [SlotSet(INVALID, None), SlotSet(INVALID_VALUE, None)]
        dispatcher.utter_message(response=f"utter_ask_{self.slot}")
        return []


class AskReportStory(AskSlot):
    slot = STORY


class AskReportContact(AskSlot):
    slot = CONTACT


class AskReportMoneyLost(AskSlot):
    slot = MONEY


class AskReportAmount(AskSlot):
    slot = AMOUNT


class AskReportWhen(AskSlot):
    slot = WHEN


def _reset() -> list[EventType]:
    return [SlotSet(s, None) for s in (*FORM_SLOTS, CANCELLED, INVALID, INVALID_VALUE)]


def _story_parse(tracker: Tracker, story: str) -> dict:
    """The NLU result Rasa gave the message that told the story (the form kept only its text)."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        if story in ((event.get("text") or "").strip(), (parse.get("text") or "").strip()):
            return parse
    return {}


def form_details(tracker: Tracker) -> dict[str, Any]:
    """The form's answers as the report's details (what the resident said, as they said it)."""
    details = {
        "story": tracker.get_slot(STORY),
        "contact": tracker.get_slot(CONTACT),
        "money_lost": tracker.get_slot(MONEY),
        "amount": tracker.get_slot(AMOUNT),
        "when": tracker.get_slot(WHEN),
    }
    return {k: v for k, v in details.items() if v is not None}


def _amount(value: Any) -> Decimal | None:
    return Decimal(value) if value not in (None, UNKNOWN) else None


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value not in (None, UNKNOWN) else None


class ActionSubmitReport(Action):
    def name(self) -> str:
        return "action_submit_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot(CANCELLED):
            dispatcher.utter_message(response="utter_report_cancelled")
            return _reset()
        d = deps()
        story = tracker.get_slot(STORY) or ""
        contact = tracker.get_slot(CONTACT)
        money_lost = tracker.get_slot(MONEY)
        amount, happened_at = _amount(tracker.get_slot(AMOUNT)), _when(tracker.get_slot(WHEN))
        details = form_details(tracker)
        report_id: int | None = None
        try:
            current = await recent_report_id(d.store, tracker)
            if current is not None:
                view = await call_store(
                    d.store.update_report,
                    current,
                    details=details,
                    money_lost=money_lost,
                    amount=amount,
                    happened_at=happened_at,
                )
                report_id = view.id
        except (StoreUnavailable, LookupError):
            report_id = None
        if report_id is None:
            text = story if not contact or contact == NONE else f"{story}\n{contact}"
            analysis = d.analyzer.analyse(text)
            parse = _story_parse(tracker, story)
            verdict = decide(parse, analysis, d.taxonomy, d.settings.scam_threshold)
            report = dataclasses.replace(
                new_report(tracker, analysis, assess(verdict), SOURCE_FORM),
                details={**details, URGENT_ALERT: bool(money_lost)},
                money_lost=money_lost,
                amount=amount,
                happened_at=happened_at,
            )
            report_id = await log_report(d, report)
        if money_lost and report_id is not None:
            await raise_alert(dispatcher, tracker, report_id)
        elif money_lost:  # spooled: the alert is raised when the report is replayed
            dispatcher.utter_message(response="utter_urgent", alert_line=ALERT_SAVED_LINE)
        if report_id is None:
            dispatcher.utter_message(response="utter_report_saved_later")
        else:
            dispatcher.utter_message(response="utter_report_logged", report_id=report_id)
        logger.info("report %s submitted through the form", report_id)
        return [*_reset(), SlotSet(CURRENT, report_id)]
