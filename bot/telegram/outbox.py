"""Sending through the outbox: nothing the bot has to say is lost when Telegram cannot take it.

Every message is written to the store's outbox first (``Store.outbox_put``), then sent at once.
What Telegram refuses for now (``RetryAfter`` beyond the rate limiter's own retries, a network
error, a time-out, a 5xx) goes back to the outbox with the reason and is tried again with a
growing delay by a repeating job (``flush``). What it will never take (the bot was blocked or
removed, the chat is gone, a request Telegram calls bad) is marked failed and kept, with the
reason, for staff to see. A chat's messages go out in the order they were written: the store
hands out a chat's oldest waiting message before any later one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot.store.errors import StoreUnavailable
from bot.store.repo import NewOutbound, OutboundView, Store
from bot.store.types import utcnow
from bot.telegram.render import Outgoing

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 2.0
LONGEST_RETRY_SECONDS = 300.0
GIVE_UP_AFTER = timedelta(hours=24)
CLAIM_BATCH = 100
# A message claimed this long ago by a sender that never finished (the process died) is retried.
STALE_CLAIM_SECONDS = 120.0


def _seconds(value: Any) -> float:
    """``RetryAfter.retry_after`` is an int in PTB 22, a timedelta with PTB_TIMEDELTA set."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Courier:
    store: Store
    bot: Bot
    give_up_after: timedelta = GIVE_UP_AFTER
    _locks: defaultdict[str, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )

    async def post(
        self,
        chat_id: int | str,
        outgoing: list[Outgoing],
        *,
        reply_to: int | None = None,
        purpose: str = "reply",
        dedupe_key: str | None = None,
    ) -> list[OutboundView]:
        """Write the messages to the outbox, then send what can be sent now."""
        if not outgoing:
            return []
        chat = str(chat_id)
        items = [
            NewOutbound(
                chat_external_id=chat,
                text=message.text,
                purpose=purpose,
                reply_markup=message.keyboard.to_dict() if message.keyboard else None,
                reply_to=reply_to,
                dedupe_key=f"{dedupe_key}:{i}" if dedupe_key else None,
            )
            for i, message in enumerate(outgoing)
        ]
        try:
            rows = await asyncio.to_thread(self.store.outbox_put, items)
        except StoreUnavailable as exc:
            # The store is down: sending without the outbox beats not sending.
            logger.error("outbox unavailable (%s); sending to chat without it", exc)
            for message in outgoing:
                try:
                    await self._send(chat, message.text, message.keyboard, reply_to)
                except TelegramError as send_error:
                    logger.error(
                        "a message was lost: store and Telegram both failed: %s",
                        _reason(send_error),
                    )
            return []
        await self.flush(chat)
        return rows

    async def flush(self, chat: str | None = None) -> int:
        """Send what is due (of one chat, or of all); returns how many were sent."""
        claimed = await asyncio.to_thread(self.store.outbox_claim, CLAIM_BATCH, chat)
        by_chat: dict[str, list[OutboundView]] = defaultdict(list)
        for row in claimed:
            by_chat[row.chat_external_id].append(row)
        results = await asyncio.gather(*(self._chat(name, rows) for name, rows in by_chat.items()))
        return sum(results)

    async def _chat(self, chat: str, rows: list[OutboundView]) -> int:
        """Send a chat's claimed messages in order, then any that came in meanwhile."""
        sent = 0
        async with self._locks[chat]:
            while rows:
                for i, row in enumerate(rows):
                    ok, go_on = await self._deliver(row)
                    sent += ok
                    if not go_on:
                        await asyncio.to_thread(
                            self.store.outbox_release, [r.id for r in rows[i + 1 :]]
                        )
                        return sent
                rows = await asyncio.to_thread(self.store.outbox_claim, CLAIM_BATCH, chat)
        return sent

    async def _send(
        self,
        chat: str,
        text: str,
        keyboard: InlineKeyboardMarkup | None,
        reply_to: int | None,
    ) -> int:
        message = await self.bot.send_message(
            int(chat),
            text,
            reply_markup=keyboard,
            reply_parameters=(
                ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
            ),
        )
        return message.message_id

    async def _deliver(self, row: OutboundView) -> tuple[bool, bool]:
        """Send one message: (sent, whether the chat's next message may go now)."""
        keyboard = (
            InlineKeyboardMarkup.de_json(row.reply_markup, self.bot) if row.reply_markup else None
        )
        try:
            message_id = await self._send(row.chat_external_id, row.text, keyboard, row.reply_to)
        except RetryAfter as exc:
            await self._later(row, exc, _seconds(exc.retry_after))
            return False, False
        except ChatMigrated as exc:  # a group became a supergroup: same messages, new id
            await asyncio.to_thread(
                self.store.outbox_move, row.chat_external_id, str(exc.new_chat_id)
            )
            await self._later(row, exc, 0.0)
            return False, False
        except (Forbidden, BadRequest) as exc:
            logger.warning("outbox %s to %s refused for good: %s", row.id, row.purpose, exc)
            await asyncio.to_thread(self.store.outbox_fail, row.id, _reason(exc))
            return False, True
        except (TelegramError, InvalidToken) as exc:  # network, time-out, 5xx
            delay = min(FIRST_RETRY_SECONDS * 2**row.attempts, LONGEST_RETRY_SECONDS)
            await self._later(row, exc, delay)
            return False, False
        await asyncio.to_thread(self.store.outbox_sent, row.id, message_id)
        return True, True

    async def _later(self, row: OutboundView, exc: BaseException, delay: float) -> None:
        if utcnow() - row.created_at > self.give_up_after:
            hours = self.give_up_after.total_seconds() / 3600
            await asyncio.to_thread(
                self.store.outbox_fail, row.id, f"gave up after {hours:g} h: {_reason(exc)}"
            )
            return
        logger.info("outbox %s waits %.0f s: %s", row.id, delay, _reason(exc))
        await asyncio.to_thread(self.store.outbox_retry, row.id, _reason(exc), delay)

    async def requeue_stale(self, older_than: float = STALE_CLAIM_SECONDS) -> int:
        return await asyncio.to_thread(self.store.outbox_requeue_stale, older_than)
