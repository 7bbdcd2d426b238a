"""The quiet check of group messages: warn the group only about a clear scam with evidence.

Every message in a grid group the bot can see is checked through the NLU without a Rasa turn
(no conversation state, no reply). When it is a scam with high risk and confidence at least
``GROUP_WARN_CONFIDENCE``, **and** something besides the model backs it (a red flag, an
indicator, a confirmed indicator or a reviewed report), the bot logs an automatic report and
replies to that message with a short warning, unless it already warned this group about the
same content (or a near copy) within ``GROUP_WARN_WINDOW_MINUTES``. Anything else gets no answer,
and the text of an ordinary message is not kept.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot.knowledge import known_about, report_of
from bot.nlp.assess import CONFIRMED, Assessment, assess
from bot.nlp.classify import Classification, Classifier
from bot.nlp.decision import HIGH
from bot.nlp.rasa_server import RasaUnavailable
from bot.nlp.taxonomy import Taxonomy
from bot.store.repo import InboundView, Store

logger = logging.getLogger(__name__)

SOURCE_GROUP = "group_auto"
MAX_FLAGS = 3


@dataclass
class GroupWatcher:
    classifier: Classifier
    store: Store
    taxonomy: Taxonomy
    confidence: float = 0.8
    window: timedelta = timedelta(minutes=60)

    def should_warn(self, result: Assessment, classification: Classification) -> bool:
        return (
            result.is_scam
            and result.risk == HIGH
            and result.confidence >= self.confidence
            and result.evidence_in(classification.analysis)
        )

    async def check(self, message: InboundView) -> list[dict] | None:
        """The replies for a group message: [] to stay quiet, None if the NLU is down."""
        if not any(ch.isalnum() for ch in message.text):
            await asyncio.to_thread(self.store.inbox_forget_text, message.id)
            return []
        try:
            classification = await self.classifier.classify(message.text)
        except RasaUnavailable as exc:
            logger.warning("quiet check of inbox %s waits: %s", message.id, exc)
            return None
        analysis = classification.analysis
        known = await asyncio.to_thread(known_about, self.store, analysis)
        result = assess(classification.verdict, known)
        if not self.should_warn(result, classification):
            await asyncio.to_thread(self.store.inbox_forget_text, message.id)
            return []
        chat = message.chat_external_id or ""
        since = datetime.now(timezone.utc) - self.window
        if await asyncio.to_thread(
            self.store.group_warned_recently, message.channel, chat, analysis.normalized, since
        ):
            logger.info("group %s already warned about this message", chat)
            return []
        new = report_of(
            analysis,
            result,
            sender_id=message.sender_id,
            channel=message.channel,
            source=SOURCE_GROUP,
            chat_external_id=chat,
            inbound_message_id=message.id,
        )
        report = await asyncio.to_thread(self.store.add_report, new)
        logger.info("warned group %s: %s (report %s)", chat, result.scam_type, report.id)
        return [{"text": self.warning(result, classification, report.id)}]

    def warning(self, result: Assessment, classification: Classification, report_id: int) -> str:
        name = self.taxonomy.get(result.scam_type).name
        flags = []
        for flag in classification.analysis.red_flags:
            if flag.text not in flags:
                flags.append(flag.text)
        quoted = "".join(f"“{f}”" for f in flags[:MAX_FLAGS])
        because = f"（{quoted}）" if quoted else ""
        known = result.known
        staff = "工作人员已核实过这类消息是诈骗。" if known.seen_verdict == CONFIRMED else ""
        if known.confirmed_indicators:
            staff += f"{'、'.join(known.confirmed_indicators[:2])}已被确认用于诈骗。"
        return (
            f"⚠️ 提醒大家：这条消息很像“{name}”诈骗{because}。{staff}"
            "不要点链接、不要转账、不要下载对方的APP，拿不准打96110，已经转账马上打110。"
            f"（已记录为第{report_id}号举报）"
        )
