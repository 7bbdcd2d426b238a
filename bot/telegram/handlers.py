"""What the bot does with each kind of update.

Private chats: everything goes to the conversation (Rasa through the store-first gateway):
text, forwarded messages (taken as "is this a scam?"), screenshots (read by OCR first), commands
and button presses. Other kinds (stickers, voice, files) get a short answer saying what the bot
can read. Groups: the bot answers when mentioned, replied to or given a command, by replying to
that message; every other message is checked quietly (``watch.GroupWatcher``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from telegram import Document, Message, PhotoSize, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.gateway import WATCH, Gateway
from bot.ocr import OcrError, Reader
from bot.store.repo import InboundView, Store, StoreUnavailable
from bot.telegram.ids import sender_id
from bot.telegram.outbox import Courier
from bot.telegram.render import to_telegram

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
# Commands in the menu and what each says to the conversation.
COMMANDS = {
    "start": ("开始使用", "/greet"),
    "help": ("我能做什么", "/help"),
    "check": ("查一条消息是不是诈骗", "/ask_is_scam"),
    "report": ("举报诈骗", "/report_scam"),
    "status": ("查我的举报进度", "/check_report_status"),
    "subscribe": ("订阅防骗提醒", "/subscribe"),
    "unsubscribe": ("取消订阅", "/unsubscribe"),
}
UNREADABLE = (
    "这类消息我还看不懂。请直接把可疑的文字发给我，"
    + "或者发一张截图（图片），我来帮您看看是不是诈骗。"
)
PHOTO_NOT_RECEIVED = "这张图片没有收到，请再发一次，或者直接把文字发给我。"
GROUP_START = (
    "大家好，我是社区反诈小助手。群里有人发诈骗信息，我会回复提醒大家。"
    "要我看到群里的消息，请群主把我设为管理员，"
    "或在 @BotFather 里关闭隐私模式（/setprivacy → Disable）。"
    "有拿不准的消息，可以@我，或者私聊我。"
)


def _image_of(message: Message) -> PhotoSize | Document | None:
    """The picture to read: the largest size of a photo, or an image sent as a file (a
    screenshot sent uncompressed)."""
    if message.photo:
        return message.photo[-1]
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return document
    return None


@dataclass
class FrontEnd:
    """The handlers, with what they need; registered on the Application by ``app.py``."""

    gateway: Gateway
    store: Store
    reader: Callable[[], Reader]
    courier: Courier
    _locks: defaultdict[str, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    _chats_seen: set[tuple[int, str | None]] = field(default_factory=set)

    # Sending

    async def send(
        self,
        chat_id: int,
        replies: list[dict],
        reply_to: int | None = None,
        purpose: str = "reply",
    ) -> None:
        """Through the outbox: written first, sent now, retried later if Telegram is not there."""
        await self.courier.post(chat_id, to_telegram(replies), reply_to=reply_to, purpose=purpose)

    async def converse(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        message: Message,
        text: str,
        *,
        reply: bool = False,
        extra: dict | None = None,
    ) -> None:
        """One turn of the conversation for the sender of ``message``, answered in its chat."""
        chat, user = message.chat, message.from_user
        if user is None:
            return
        sender = sender_id(chat.id, user.id)
        async with self._locks[sender]:  # one turn at a time per conversation, in order
            outcome = await self.gateway.submit(
                sender,
                text,
                channel=CHANNEL,
                chat_external_id=str(chat.id),
                metadata={"message_id": message.message_id, **(extra or {})},
            )
        await self.send(chat.id, outcome.replies, message.message_id if reply else None)

    # Handlers

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        word = message.text.split()[0].lstrip("/").split("@")[0].lower()
        group = message.chat.type != ChatType.PRIVATE
        if word == "start" and group:
            await self.send(message.chat.id, [{"text": GROUP_START}])
            return
        rest = message.text.partition(" ")[2].strip()
        # "/check 这条短信……" checks the text given; a bare command says its payload.
        text = rest if word == "check" and rest else COMMANDS.get(word, (None, "/help"))[1]
        await self.converse(context, message, text, reply=group)

    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        try:
            await query.answer()
        except TelegramError as exc:  # too old to answer: the press still counts
            logger.info("callback answer failed: %s", exc)
        message = query.message
        if not isinstance(message, Message) or not query.data:
            return
        chat, user = message.chat, query.from_user
        sender = sender_id(chat.id, user.id)
        async with self._locks[sender]:
            outcome = await self.gateway.submit(
                sender,
                query.data,
                channel=CHANNEL,
                chat_external_id=str(chat.id),
                metadata={"button": True},
            )
        await self.send(chat.id, outcome.replies)

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        if message.chat.type == ChatType.PRIVATE:
            await self.private(context, message)
        else:
            await self.group(context, message)

    async def private(self, context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
        text = await self.readable(context, message)
        if text is None:
            return
        extra = {"forwarded": True} if message.forward_origin is not None else None
        await self.converse(context, message, text, extra=extra)

    async def group(self, context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
        known = (message.chat.id, message.chat.title)
        if known not in self._chats_seen:  # one write per group (and title), not per message
            try:
                await asyncio.to_thread(
                    self.store.upsert_chat,
                    CHANNEL,
                    str(message.chat.id),
                    "group",
                    message.chat.title,
                )
                self._chats_seen.add(known)
            except StoreUnavailable as exc:  # the message itself still goes to the gateway
                logger.warning("group %s not recorded: %s", message.chat.id, exc)
        if self.addressed(context, message):
            text = await self.readable(context, message, reply=True)
            if text is not None:
                text = self.without_mention(context, text)
                await self.converse(context, message, text or "/help", reply=True)
            return
        text = message.text or message.caption or ""
        if _image_of(message) is not None:
            text = await self.ocr_text(context, message) or text
        if not text.strip():
            return
        user = message.from_user
        assert user is not None
        outcome = await self.gateway.submit(
            sender_id(message.chat.id, user.id),
            text,
            channel=CHANNEL,
            chat_external_id=str(message.chat.id),
            metadata={"message_id": message.message_id},
            mode=WATCH,
        )
        await self.send(message.chat.id, outcome.replies, message.message_id, "warning")

    # Reading a message

    def addressed(self, context: ContextTypes.DEFAULT_TYPE, message: Message) -> bool:
        """Mentioned by name, or a reply to one of the bot's messages."""
        me = context.bot.username
        replied = message.reply_to_message
        if replied is not None and replied.from_user and replied.from_user.id == context.bot.id:
            return True
        entities = message.parse_entities([MessageEntityType.MENTION]) or {}
        entities |= message.parse_caption_entities([MessageEntityType.MENTION]) or {}
        return any(value.lower() == f"@{me}".lower() for value in entities.values())

    def without_mention(self, context: ContextTypes.DEFAULT_TYPE, text: str) -> str:
        return text.replace(f"@{context.bot.username}", "").strip()

    async def readable(
        self, context: ContextTypes.DEFAULT_TYPE, message: Message, *, reply: bool = False
    ) -> str | None:
        """The text to check: typed, a caption, or read from a photo; None after answering."""
        if _image_of(message) is not None:
            text = await self.ocr_text(context, message, answer=True, reply=reply)
            if text is None:
                return None
            caption = (message.caption or "").strip()
            return f"{caption}\n{text}" if caption else text
        text = message.text or message.caption
        if text and text.strip():
            return text
        reply_to = message.message_id if reply else None
        await self.send(message.chat.id, [{"text": UNREADABLE}], reply_to)
        return None

    async def ocr_text(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        message: Message,
        *,
        answer: bool = False,
        reply: bool = False,
    ) -> str | None:
        image = _image_of(message)
        assert image is not None
        try:
            data = bytes(await (await image.get_file()).download_as_bytearray())
            result = await self.reader().aread(data)
        except (OcrError, TelegramError) as exc:
            logger.info("no text from a photo: %r", exc)
            if answer:
                text = exc.message if isinstance(exc, OcrError) else PHOTO_NOT_RECEIVED
                await self.send(
                    message.chat.id,
                    [{"text": text}],
                    message.message_id if reply else None,
                )
            return None
        return result.text

    async def deliver_later(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Job: run messages that waited (Rasa or the action server was down) and answer them."""

        async def deliver(message: InboundView, replies: list[dict]) -> None:
            if message.chat_external_id is None:
                return
            reply_to = (message.payload or {}).get("message_id")
            group = (message.payload or {}).get("mode") == WATCH
            await self.send(
                int(message.chat_external_id),
                replies,
                reply_to if group or str(message.chat_external_id).startswith("-") else None,
            )

        await self.gateway.retry_pending(deliver)
