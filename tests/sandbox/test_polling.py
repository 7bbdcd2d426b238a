"""A real python-telegram-bot Application polling the sandbox: the whole conversation loop.

A resident's message goes in through the control API, reaches a PTB handler, the handler's
answer (with buttons, as a reply) comes out in the chat's message list, a button press comes
back as a CallbackQuery, and edits, photos, forwards and commands look as they do on Telegram.
"""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    MessageOriginChannel,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Update,
)
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.sandbox.conftest import AUNTIE, GROUP, PRIVATE, UNCLE, builder, polling
from tests.sandbox.helpers import Control, png

pytestmark = pytest.mark.anyio

BUTTONS = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("我已经转账了", callback_data="/money_transferred")],
        [InlineKeyboardButton("订阅防骗提醒", callback_data="/subscribe")],
    ]
)


async def test_message_reply_buttons_press_answer_and_edit(
    control: Control, base_url: str, base_file_url: str
) -> None:
    pressed: asyncio.Queue[str] = asyncio.Queue()

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"收到：{update.message.text}", reply_markup=BUTTONS)

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer("好的，马上处理")
        await query.edit_message_text("请立即拨打110，并联系银行冻结。")
        await pressed.put(query.data or "")

    app = builder(base_url, base_file_url).build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    app.add_handler(CallbackQueryHandler(on_press))
    async with polling(app):
        sent = await control.send(GROUP, AUNTIE, text="有人让我下载APP做任务拿佣金")
        original = sent["message"]["message_id"]
        reply = await control.bot_reply(GROUP["id"], after=original)
        assert reply["from_bot"] is True
        assert reply["text"] == "收到：有人让我下载APP做任务拿佣金"
        assert reply["reply_to_message_id"] == original
        texts = [[b["text"] for b in row] for row in reply["reply_markup"]["inline_keyboard"]]
        assert texts == [["我已经转账了"], ["订阅防骗提醒"]]

        press = await control.press(GROUP["id"], reply["message_id"], "/money_transferred", UNCLE)
        assert await asyncio.wait_for(pressed.get(), 10) == "/money_transferred"
        query_id = press["callback_query"]["id"]
        answered = await control.get(f"/sandbox/callbacks/{query_id}", wait=5)
        assert answered["answered"] is True
        assert answered["answer"]["text"] == "好的，马上处理"

        edited = (await control.messages(GROUP["id"], since=original))[0]
        assert edited["text"] == "请立即拨打110，并联系银行冻结。"
        assert edited["edit_date"] is not None
        assert edited["edits"][0]["text"] == "收到：有人让我下载APP做任务拿佣金"
        assert edited["reply_markup"] is None  # edited without reply_markup: buttons removed

        chats = (await control.get("/sandbox/chats"))["chats"]
        group = next(chat for chat in chats if chat["id"] == GROUP["id"])
        assert group["title"] == "幸福村3组网格群"
        assert group["message_count"] == 2


async def test_photo_downloads_byte_for_byte(
    control: Control, base_url: str, base_file_url: str
) -> None:
    image = png(3, 2)
    received: asyncio.Queue[tuple[bytes, int, int, str | None]] = asyncio.Queue()

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        largest = update.message.photo[-1]
        data = await (await largest.get_file()).download_as_bytearray()
        await received.put((bytes(data), largest.width, largest.height, update.message.caption))

    app = builder(base_url, base_file_url).build()
    app.add_handler(MessageHandler(filters.PHOTO, on_photo))
    async with polling(app):
        await control.send(
            PRIVATE, AUNTIE, photo=base64.b64encode(image).decode(), caption="这张截图是真的吗？"
        )
        data, width, height, caption = await asyncio.wait_for(received.get(), 10)
    assert data == image
    assert (width, height) == (3, 2)
    assert caption == "这张截图是真的吗？"


async def test_forwarded_messages_carry_their_origin(
    control: Control, base_url: str, base_file_url: str
) -> None:
    origins: asyncio.Queue[object] = asyncio.Queue()

    async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await origins.put(update.message.forward_origin)

    app = builder(base_url, base_file_url).build()
    app.add_handler(MessageHandler(filters.FORWARDED, on_message))
    async with polling(app):
        await control.send(
            PRIVATE, AUNTIE, text="【公检法】您涉嫌洗钱", forward_from={"first_name": "张警官"}
        )
        await control.send(PRIVATE, AUNTIE, text="刷单日结", forward_sender_name="兼职客服")
        channel = {"id": -100777, "type": "channel", "title": "高薪兼职频道", "message_id": 9}
        await control.send(PRIVATE, AUNTIE, text="加群领红包", forward_from_chat=channel)
        user = await asyncio.wait_for(origins.get(), 10)
        hidden = await asyncio.wait_for(origins.get(), 10)
        from_channel = await asyncio.wait_for(origins.get(), 10)
    assert isinstance(user, MessageOriginUser) and user.sender_user.first_name == "张警官"
    assert isinstance(hidden, MessageOriginHiddenUser)
    assert hidden.sender_user_name == "兼职客服"
    assert isinstance(from_channel, MessageOriginChannel)
    assert from_channel.chat.title == "高薪兼职频道" and from_channel.message_id == 9


async def test_group_mentions_and_commands_have_utf16_offsets(
    control: Control, base_url: str, base_file_url: str
) -> None:
    seen: asyncio.Queue[Update] = asyncio.Queue()
    commands: asyncio.Queue[list[str]] = asyncio.Queue()

    async def on_any(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await seen.put(update)

    async def on_check(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await commands.put(list(context.args or []))

    app = builder(base_url, base_file_url).build()
    app.add_handler(CommandHandler("check", on_check))
    app.add_handler(MessageHandler(filters.TEXT, on_any))
    async with polling(app):
        await control.send(GROUP, AUNTIE, text="😀👍 @antifraud_sandbox_bot 这个是诈骗吗？")
        mention = await asyncio.wait_for(seen.get(), 10)
        await control.send(GROUP, UNCLE, text="/check@antifraud_sandbox_bot 中奖短信")
        assert await asyncio.wait_for(commands.get(), 10) == ["中奖短信"]
        await control.send(GROUP, UNCLE, text="🎉 看看 /check@antifraud_sandbox_bot")
        later = await asyncio.wait_for(seen.get(), 10)

    assert mention.message is not None
    (entity,) = mention.message.entities
    assert (entity.type, entity.offset, entity.length) == (MessageEntity.MENTION, 5, 22)
    assert mention.message.parse_entity(entity) == "@antifraud_sandbox_bot"
    assert later.message is not None
    (command,) = later.message.entities
    assert (command.type, command.offset, command.length) == (MessageEntity.BOT_COMMAND, 6, 28)
    assert later.message.parse_entity(command) == "/check@antifraud_sandbox_bot"


async def test_long_polling_wakes_at_once_and_otherwise_waits(control: Control, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.95 <= time.monotonic() - started < 2.0

    polled = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.3)
    await control.send(PRIVATE, AUNTIE, text="在吗")
    sent_at = time.monotonic()
    updates = await asyncio.wait_for(polled, 5)
    assert time.monotonic() - sent_at < 0.1
    assert [u.message.text for u in updates if u.message] == ["在吗"]

    # Confirmed updates (update_id < offset) are gone; allowed_updates filters kinds.
    again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert again == ()
    await control.send(PRIVATE, AUNTIE, text="只要回调")
    assert await bot.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()
    everything = await bot.get_updates(timeout=0, allowed_updates=[])
    assert [u.message.text for u in everything if u.message] == ["只要回调"]
