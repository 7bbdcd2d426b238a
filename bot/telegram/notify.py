"""Messages the bot sends on its own: urgent alerts, and answers to reporters (事事有回音).

Both run as repeating jobs, read what to send from the store and hand it to the outbox, which
sends it and keeps retrying what Telegram cannot take yet; each message has a dedupe key, so a
job that runs again after a crash does not send anything twice. Alerts go to the grid leaders of
the resident's (or the group's) area who have a Telegram account, and to the staff chat
(``STAFF_CHAT_ID``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram.ext import ContextTypes

from bot.nlp.taxonomy import NOT_SCAM, Taxonomy
from bot.store.repo import Store
from bot.telegram.ids import chat_of_sender
from bot.telegram.outbox import Courier
from bot.telegram.render import Outgoing

logger = logging.getLogger(__name__)

ACTOR = "bot"
CHANNEL = "telegram"
CONFIRMED_ANSWER = (
    "您好，您举报的第{id}号消息，工作人员已经核实：确认是“{name}”诈骗。请不要再和对方联系、"
    "不要转账，也提醒身边的人。谢谢您的举报！有疑问随时问我，或拨打96110。"
)
DISMISSED_ANSWER = (
    "您好，您举报的第{id}号消息，工作人员核实后认为不是诈骗。谢谢您的提醒！以后遇到让您转账、"
    "点链接、说验证码的，还是要多留个心，拿不准拨打96110。"
)


@dataclass
class Notifier:
    store: Store
    taxonomy: Taxonomy
    courier: Courier
    staff_chat_id: int | None = None

    async def alerts(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Job: hand pending urgent alerts to the outbox, one message per recipient."""
        for alert in await asyncio.to_thread(self.store.pending_alerts, 50):
            recipients: list[int] = []
            if alert.area_id is not None:
                leaders = await asyncio.to_thread(self.store.leaders_for_area, alert.area_id)
                recipients += [u.telegram_user_id for u in leaders if u.telegram_user_id]
            if self.staff_chat_id is not None:
                recipients.append(self.staff_chat_id)
            if not recipients:
                await asyncio.to_thread(
                    self.store.mark_alert,
                    alert.id,
                    False,
                    "nobody to send it to: no grid leader with Telegram, no STAFF_CHAT_ID",
                )
                continue
            for chat_id in dict.fromkeys(recipients):
                await self.courier.post(
                    chat_id,
                    [Outgoing(f"🚨 {alert.message}")],
                    purpose="alert",
                    dedupe_key=f"alert:{alert.id}:{chat_id}",
                )
            await asyncio.to_thread(self.store.mark_alert, alert.id, True)

    async def answers(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Job: tell reporters the staff's verdict (through the outbox), then mark their
        reports answered."""
        for report in await asyncio.to_thread(self.store.reports_to_answer, CHANNEL, 50):
            chat_id = chat_of_sender(report.sender_id or "")
            if chat_id is None:
                continue
            if report.verdict_scam_type in (None, NOT_SCAM):
                text = DISMISSED_ANSWER.format(id=report.id)
            else:
                name = self.taxonomy.get(report.verdict_scam_type).name
                text = CONFIRMED_ANSWER.format(id=report.id, name=name)
            posted = await self.courier.post(
                chat_id, [Outgoing(text)], purpose="answer", dedupe_key=f"answer:{report.id}"
            )
            note = f"answer in outbox #{posted[0].id}" if posted else "answer sent"
            await asyncio.to_thread(self.store.transition, report.id, "answered", ACTOR, note=note)
