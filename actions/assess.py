"""``action_assess_message``: is this message a scam? Answer at once, and log it as a report.

The steps, in order: read the NLU result Rasa already has for the message; find red flags and
indicators; ask the store whether staff already judged this text (or a near copy) and whether any
indicator is on the confirmed list; combine (``bot.nlp.assess``); **write the report** when it is
a scam; then answer with the warning for its type. When the store is down the report goes to the
spool and the resident is still warned.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    call_store,
    channel_of,
    chat_of,
    flags_line,
    has_content,
    inbound_id_of,
    latest_text,
)
from actions.deps import Deps, deps
from bot.knowledge import known_about, report_of
from bot.nlp.analysis import Analysis
from bot.nlp.assess import CONFIRMED, DISMISSED, Assessment, Known, assess
from bot.nlp.classify import Classifier
from bot.nlp.decision import FALLBACK_INTENT, HIGH, Verdict, decide
from bot.nlp.rasa_server import RasaClient, RasaUnavailable
from bot.nlp.segments import parts_of
from bot.store.repo import NewReport, NotFound, StoreUnavailable

logger = logging.getLogger(__name__)

SOURCE_CHECK = "check"
RISK_LINES = {HIGH: "⚠️ 高风险！这很可能是诈骗。\n", "medium": "⚠️ 有诈骗风险，请提高警惕。\n"}


def seen_line(known: Known, type_name: str | None) -> str:
    """What staff already know, in words; empty when they know nothing."""
    lines = []
    if known.seen_verdict == CONFIRMED:
        name = f"（{type_name}）" if type_name else ""
        lines.append(f"工作人员已核实过这条消息：是诈骗{name}。")
    elif known.seen_verdict == DISMISSED:
        lines.append("工作人员核实过这条消息，不是诈骗。")
    if known.times_reported:
        lines.append(f"已有{known.times_reported}位居民举报过。")
    if known.confirmed_indicators:
        shown = "、".join(known.confirmed_indicators[:3])
        lines.append(f"其中的{shown}已被确认用于诈骗。")
    return "\n" + "".join(lines) if lines else ""


def new_report(tracker: Tracker, analysis: Analysis, result: Assessment, source: str) -> NewReport:
    return report_of(
        analysis,
        result,
        sender_id=tracker.sender_id,
        channel=channel_of(tracker),
        source=source,
        chat_external_id=chat_of(tracker),
        inbound_message_id=inbound_id_of(tracker),
    )


async def log_report(d: Deps, report: NewReport) -> int | None:
    """Write the report; spool it when the store is down. The report number, or None if spooled.

    A turn the gateway runs again (the action server was down when it first came) finds the
    report it logged the first time, by its inbox id, instead of logging a second one.
    """
    try:
        if report.inbound_message_id is not None:
            earlier = await call_store(d.store.report_for_inbound, report.inbound_message_id)
            if earlier is not None:
                return earlier.id
        try:
            view = await call_store(d.store.add_report, report)
        except NotFound:  # an inbox id from another store: keep the report, drop the link
            logger.warning("inbox message %s unknown to the store", report.inbound_message_id)
            view = await call_store(
                d.store.add_report, dataclasses.replace(report, inbound_message_id=None)
            )
    except StoreUnavailable:
        d.spool.put("report", report.to_dict())
        logger.warning("store unavailable: report spooled")
        return None
    return view.id


def report_line(report_id: int | None) -> str:
    if report_id is None:
        return "\n系统正忙，您的举报已保存，稍后登记编号并回复您。"
    return f"\n已登记为举报第{report_id}号，工作人员核实后会在这里回复您。"


async def by_parts(d: Deps, text: str, analysis: Analysis, whole: Verdict) -> Verdict:
    """A long message (a screenshot, a forwarded chat) judged by its parts too, through Rasa's
    own parse endpoint; the whole message's verdict if Rasa cannot be reached for that."""
    if not parts_of(text) or (whole.is_scam and whole.risk == HIGH):
        return whole
    client = RasaClient(d.settings.rasa_url, timeout=d.settings.rasa_request_timeout, retries=0)
    try:
        classifier = Classifier(client, d.analyzer, d.taxonomy, d.settings.scam_threshold)
        return await classifier.by_parts(text, analysis, whole)
    except RasaUnavailable as exc:
        logger.warning("parts of a long message not judged: %s", exc)
        return whole
    finally:
        await client.aclose()


class ActionAssessMessage(Action):
    def name(self) -> str:
        return "action_assess_message"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = latest_text(tracker)
        if not has_content(text):
            dispatcher.utter_message(response="utter_empty_message")
            return []
        d = deps()
        analysis = d.analyzer.analyse(text)
        verdict = decide(tracker.latest_message, analysis, d.taxonomy, d.settings.scam_threshold)
        verdict = await by_parts(d, text, analysis, verdict)
        known = await call_store(known_about, d.store, analysis)
        result = assess(verdict, known)
        type_name = d.taxonomy.get(result.scam_type).name if result.is_scam else None
        if not result.is_scam:
            if verdict.intent == FALLBACK_INTENT and known.seen_verdict is None:
                dispatcher.utter_message(response="utter_default")
            else:
                dispatcher.utter_message(
                    response="utter_checked_not_scam", seen_line=seen_line(known, None)
                )
            return []
        report_id = await log_report(d, new_report(tracker, analysis, result, SOURCE_CHECK))
        logger.info(
            "assessed a message as %s (%s, basis %s): report %s",
            result.scam_type,
            result.risk,
            result.basis,
            report_id,
        )
        dispatcher.utter_message(
            response=f"utter_warning_{result.scam_type}",
            risk_line=RISK_LINES.get(result.risk, RISK_LINES["medium"]),
            seen_line=seen_line(known, type_name),
            flags_line=flags_line(analysis),
            report_line=report_line(report_id),
        )
        return [SlotSet("current_report_id", report_id)]
