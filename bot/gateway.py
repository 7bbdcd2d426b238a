"""Store first: every message a resident sends is written to the inbox before Rasa sees it.

``Gateway.submit`` writes the message, then runs the turn over Rasa's REST channel with the
inbox id in the metadata (so the report the actions log points back at it). When Rasa or the
action server is down (Rasa refuses, times out, or answers a turn with nothing, which the bot's
rules never do), the message stays pending and the resident is told it is being checked;
``Gateway.retry_pending`` runs the pending turns once the services are back and hands the
replies to the front end to deliver. Nothing a resident sent is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.nlp.rasa_server import RasaClient, RasaUnavailable
from bot.store.repo import InboundView, Store, StoreUnavailable

logger = logging.getLogger(__name__)

# Said at once when a message could not be checked yet (Rasa or the action server is down).
PENDING_REPLY = (
    "已收到您的消息并保存好了。系统正在检查，稍后会在这里回复您。"
    "情况紧急、已经转账的，请立即拨打110。"
)
# Said when even the store is down: the message could not be kept, so the resident must resend.
STORE_DOWN_REPLY = (
    "系统暂时忙不过来，您的消息没能保存，请过一两分钟再发一次。已经转账的，请立即拨打110。"
)
WATCH = "watch"
# A message longer than this is cut before it goes to Rasa (the inbox keeps all of it).
MAX_TURN_CHARS = 4000


@dataclass(frozen=True)
class Outcome:
    """The result of one message: the replies to show, and whether it is still pending."""

    replies: list[dict]
    pending: bool
    inbound_id: int | None = None


@dataclass
class Gateway:
    """The front end's way into the conversation (the Telegram bot, ``antifraud chat``)."""

    store: Store
    rasa: RasaClient
    pending_reply: str = PENDING_REPLY
    # Runs messages submitted with mode="watch" (the quiet group check) instead of a Rasa turn:
    # returns the replies ([] for none), or None to keep the message pending.
    watch: Callable[[InboundView], Awaitable[list[dict] | None]] | None = None
    _stats: dict[str, int] = field(default_factory=lambda: {"done": 0, "pending": 0})

    async def submit(
        self,
        sender_id: str,
        text: str,
        *,
        channel: str = "rest",
        chat_external_id: str | None = None,
        metadata: dict | None = None,
        mode: str | None = None,
    ) -> Outcome:
        """Store the message, then run its turn; pending (and said so) when that fails.

        ``mode="watch"``: a group message checked quietly; nothing is said while it waits.
        """
        if mode is not None:
            metadata = {**(metadata or {}), "mode": mode}
        try:
            inbound_id = await asyncio.to_thread(
                self.store.inbox_put,
                sender_id,
                channel,
                text,
                chat_external_id=chat_external_id,
                payload=metadata,
            )
        except StoreUnavailable:
            logger.error("store unavailable: a message from %s could not be kept", channel)
            return Outcome([{"recipient_id": sender_id, "text": STORE_DOWN_REPLY}], True)
        claimed = await asyncio.to_thread(self.store.inbox_claim_one, inbound_id)
        if claimed is None:  # another worker took it already
            return Outcome([], True, inbound_id)
        replies = await self._turn(claimed)
        if replies is None and mode == WATCH:
            return Outcome([], True, inbound_id)
        if replies is None:
            return Outcome(
                [{"recipient_id": sender_id, "text": self.pending_reply}], True, inbound_id
            )
        return Outcome(replies, False, inbound_id)

    async def _turn(self, message: InboundView) -> list[dict] | None:
        if (message.payload or {}).get("mode") == WATCH and self.watch is not None:
            replies = await self.watch(message)
            if replies is None:
                await self._retry_later(message.id, "the quiet check could not run (NLU down?)")
                return None
            await asyncio.to_thread(self.store.inbox_done, message.id, replies)
            return replies
        metadata = {
            **(message.payload or {}),
            "inbound_id": message.id,
            "channel": message.channel,
        }
        if message.chat_external_id is not None:
            metadata["chat_id"] = message.chat_external_id
        try:
            replies = await self.rasa.send(
                message.sender_id, message.text[:MAX_TURN_CHARS], metadata
            )
        except RasaUnavailable as exc:
            await self._retry_later(message.id, str(exc))
            return None
        if not replies:
            await self._retry_later(message.id, "the turn produced no reply (action server down?)")
            return None
        try:
            await asyncio.to_thread(self.store.inbox_done, message.id, replies)
        except StoreUnavailable:
            logger.warning("store unavailable: inbox %s answered but not marked done", message.id)
        self._stats["done"] += 1
        return replies

    async def _retry_later(self, inbound_id: int, error: str) -> None:
        self._stats["pending"] += 1
        logger.warning("inbox %s kept pending: %s", inbound_id, error)
        try:
            await asyncio.to_thread(self.store.inbox_retry, inbound_id, error)
        except StoreUnavailable:
            logger.error("store unavailable: inbox %s left in processing", inbound_id)

    async def retry_pending(
        self, deliver: Callable[[InboundView, list[dict]], Awaitable[None]], limit: int = 20
    ) -> int:
        """Run pending turns; ``deliver`` gets each answered message's replies. The count run."""
        answered = 0
        for _ in range(limit):
            # One at a time, so none is left claimed when the services are still down.
            claimed = await asyncio.to_thread(self.store.inbox_claim, 1)
            if not claimed:
                break
            replies = await self._turn(claimed[0])
            if replies is None:
                break  # still down: try again later, in the same order
            await deliver(claimed[0], replies)
            answered += 1
        return answered
