"""The control API with bad input: every mistake is a 400 that says what is wrong, never a 500.

``POST /sandbox/send`` is fed what a careless test or a hand-written curl sends: no body, broken
JSON, wrong types, an unknown chat type, text over 4096 characters, a photo that is not an image,
two media at once. Each is refused with a description naming the field, and a refused request
leaves no trace (no user, chat, file, message or update). Good media (emoji-only text, a sticker,
a voice message, a document) reaches python-telegram-bot and downloads byte for byte.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import httpx
import pytest
from telegram import Bot

from bot.sandbox import SandboxState, create_app
from tests.sandbox.conftest import AUNTIE, GROUP, PRIVATE, UNCLE
from tests.sandbox.helpers import TOKEN, Control, png

pytestmark = pytest.mark.anyio

NEW_PRIVATE = {"id": 77, "type": "private"}
NEWCOMER = {"id": 77, "first_name": "新来的"}
NEW_GROUP = {"id": -2002, "type": "group", "title": "新建的网格群"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png_header(width: int, height: int) -> bytes:
    """Just a PNG signature and IHDR chunk, with any size written in it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def message(**fields: Any) -> dict[str, Any]:
    return {"chat": NEW_PRIVATE, "from": NEWCOMER, **fields}


BAD_SENDS: list[tuple[str, Any, str]] = [
    # (case, body: bytes sent as they are or an object sent as JSON, the description)
    ("empty body", b"", "from must be an object with an id and a first_name"),
    ("empty object", {}, "from must be an object with an id and a first_name"),
    ("broken JSON", b'{"chat": ', "the body must be JSON"),
    ("not UTF-8", b"\xff\xfe{}", "the body must be JSON"),
    ("a list", b"[1, 2]", "the body must be a JSON object"),
    ("a string", b'"hello"', "the body must be a JSON object"),
    (
        "lone surrogate",
        b'{"chat": {"id": 77}, "from": {"id": 77, "first_name": "a"}, "text": "\\ud800"}',
        "strings must be encoded in UTF-8",
    ),
    ("no text", message(), "message text is empty"),
    ("blank text", message(text=" \n\t"), "message text is empty"),
    ("text a number", message(text=110), "text must be a string"),
    ("text a list", message(text=["诈骗"]), "text must be a string"),
    ("chat a string", {"chat": "77", "from": NEWCOMER, "text": "x"}, "chat must be an object"),
    ("chat without id", {"chat": {}, "from": NEWCOMER, "text": "x"}, "chat.id must be an integer"),
    ("chat id a word", message(chat={"id": "abc"}, text="x"), "chat.id must be an integer"),
    ("chat id a fraction", message(chat={"id": 7.5}, text="x"), "chat.id must be an integer"),
    ("from missing", {"chat": NEW_PRIVATE, "text": "x"}, "from must be an object"),
    (
        "from id true",
        message(**{"from": {"id": True, "first_name": "a"}}, text="x"),
        "from.id must be an integer",
    ),
    (
        "from id negative",
        message(**{"from": {"id": -77, "first_name": "a"}}, text="x"),
        "from.id must be a positive id",
    ),
    (
        "from is the bot",
        message(**{"from": {"id": 123456789, "first_name": "a"}}, text="x"),
        "not the bot's",
    ),
    (
        "new user without name",
        message(**{"from": {"id": 77}}, text="x"),
        "from.first_name is needed for a new user",
    ),
    (
        "first_name a number",
        message(**{"from": {"id": 77, "first_name": 5}}, text="x"),
        "from.first_name must be a non-empty string",
    ),
    (
        "username a list",
        message(**{"from": {**NEWCOMER, "username": ["a"]}}, text="x"),
        "from.username must be a non-empty string",
    ),
    (
        "unknown chat type",
        message(chat={"id": -2002, "type": "channel"}, text="x"),
        "chat.type must be one of private, group, supergroup",
    ),
    (
        "made-up chat type",
        message(chat={"id": -2002, "type": "secret"}, text="x"),
        "chat.type must be one of private, group, supergroup",
    ),
    (
        "chat type a list",
        message(chat={"id": -2002, "type": ["group"]}, text="x"),
        "chat.type must be one of private, group, supergroup",
    ),
    (
        "group with a positive id",
        message(chat={"id": 2002, "type": "group"}, text="x"),
        "a group's id is negative",
    ),
    (
        "someone else's private chat",
        message(chat={"id": 78, "type": "private"}, text="x"),
        "a private chat's id is its user's id",
    ),
    (
        "title a number",
        message(chat={**NEW_GROUP, "title": 3}, text="x"),
        "chat.title must be a string",
    ),
    ("huge text", message(text="骗" * 4097), "message is too long"),
    ("huge emoji text", message(text="😀" * 4097), "message is too long"),
    (
        "huge caption",
        message(photo=b64(png(2, 2)), caption="图" * 1025),
        "message caption is too long",
    ),
    ("photo not base64", message(photo="这不是图片!!"), "photo is not valid base64"),
    ("photo a number", message(photo=12345), "photo must be a base64 string"),
    ("photo empty", message(photo=""), "photo must be a base64 string"),
    (
        "photo is text",
        message(photo=b64("一段文字".encode())),
        "photo must be a PNG or JPEG image",
    ),
    (
        "photo is a GIF",
        message(photo=b64(b"GIF89a\x01\x00\x01\x00")),
        "photo must be a PNG or JPEG image",
    ),
    ("photo truncated PNG", message(photo=b64(png(4, 4)[:20])), "photo is a broken PNG"),
    (
        "photo broken JPEG",
        message(photo=b64(b"\xff\xd8\xff\xe0\x00\x10JFIF")),
        "photo is a broken JPEG",
    ),
    (
        "photo JPEG garbage",
        message(photo=b64(b"\xff\xd8" + b"\x00" * 40)),
        "photo is a broken JPEG",
    ),
    ("photo 0x0", message(photo=b64(png_header(0, 0))), "photo has no pixels (0x0)"),
    ("photo too large", message(photo=b64(png_header(9000, 2000))), "photo is too large"),
    ("photo a strip", message(photo=b64(png_header(2100, 100))), "photo is too narrow"),
    (
        "photo and sticker",
        message(photo=b64(png(2, 2)), sticker=True),
        "send one of photo, sticker, voice, document, not photo, sticker",
    ),
    (
        "three media",
        message(sticker=True, voice=True, document={"file_name": "a.txt"}),
        "not sticker, voice, document",
    ),
    ("photo with text", message(photo=b64(png(2, 2)), text="看图"), "takes a caption, not a text"),
    ("caption alone", message(caption="说明"), "a caption needs a photo, a voice or a document"),
    ("sticker with caption", message(sticker=True, caption="哈哈"), "a sticker takes no caption"),
    ("sticker a word", message(sticker="smile"), 'sticker must be true or {"emoji": "👍"}'),
    (
        "sticker emoji a number",
        message(sticker={"emoji": 1}),
        "sticker.emoji must be a non-empty string",
    ),
    ("voice a word", message(voice="hello"), "voice must be true or"),
    ("voice too long", message(voice={"duration": 601}), "voice.duration must be 1 to 600"),
    (
        "voice duration a word",
        message(voice={"duration": "长"}),
        "voice.duration must be an integer",
    ),
    (
        "voice not audio",
        message(voice={"mime_type": "text/plain"}),
        "voice.mime_type must be a MIME type like audio/",
    ),
    ("voice bad base64", message(voice={"base64": "@@@"}), "voice.base64 is not valid base64"),
    (
        "document without name",
        message(document={"base64": b64(b"x")}),
        'document must be {"file_name": "...", "base64": "..."}',
    ),
    (
        "document named a path",
        message(document={"file_name": "../etc/passwd", "base64": "eA=="}),
        "document.file_name must be a plain file name",
    ),
    (
        "document without data",
        message(document={"file_name": "a.txt"}),
        "document.base64 must be a base64 string",
    ),
    (
        "two forward origins",
        message(text="x", forward_sender_name="a", forward_from={"first_name": "b"}),
        "give one of forward_from, forward_sender_name",
    ),
    (
        "forward_from without name",
        message(text="x", forward_from={"id": 5}),
        "forward_from must be an object with a first_name",
    ),
    (
        "forward_sender_name a number",
        message(text="x", forward_sender_name=7),
        "forward_sender_name must be a non-empty string",
    ),
    (
        "forward from a private chat",
        message(text="x", forward_from_chat={"id": -5, "title": "t", "type": "private"}),
        "forward_from_chat.type must be one of channel",
    ),
    (
        "forward_date a word",
        message(text="x", forward_sender_name="a", forward_date="昨天"),
        "forward_date must be an integer",
    ),
    (
        "reply to a word",
        message(text="x", reply_to_message_id="第一条"),
        "reply_to_message_id must be an integer",
    ),
    (
        "reply in a new chat",
        message(text="x", reply_to_message_id=1),
        "message to be replied not found",
    ),
    ("callback a string", {"callback": "press"}, "callback must be {"),
    (
        "callback in no chat",
        {"callback": {"chat_id": -4040, "message_id": 1, "data": "d"}},
        "chat not found",
    ),
]


async def snapshot(control: Control) -> tuple[Any, Any]:
    chats = await control.get("/sandbox/chats")
    bot = await control.get("/sandbox/bot")
    return chats, bot["pending_update_count"]


@pytest.mark.parametrize(
    ("body", "description"),
    [pytest.param(body, description, id=case) for case, body, description in BAD_SENDS],
)
async def test_bad_sends_are_400_with_a_clear_description(
    control: Control, body: Any, description: str
) -> None:
    await control.send(GROUP, AUNTIE, text="先有一条消息")
    before = await snapshot(control)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await control.client.post(
        "/sandbox/send", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["ok"] is False and error["error_code"] == 400
    assert error["description"].startswith("Bad Request: ")
    assert description in error["description"]
    assert await snapshot(control) == before  # nothing was stored or queued


async def test_bad_input_in_existing_chats_is_refused(control: Control) -> None:
    first = (await control.send(GROUP, AUNTIE, text="有人冒充客服"))["message"]
    await control.send(PRIVATE, AUNTIE, text="你好")
    before = await snapshot(control)
    cases = [
        (
            {"chat": {"id": 42, "type": "group"}, "from": AUNTIE, "text": "x"},
            "chat 42 is a private chat, not a group one",
        ),
        (
            {"chat": PRIVATE, "from": UNCLE, "text": "x"},
            "in a private chat only its user can send",
        ),
        (
            {"chat": GROUP, "from": UNCLE, "text": "x", "reply_to_message_id": 99},
            "message to be replied not found",
        ),
        (
            {"callback": {"chat_id": GROUP["id"], "message_id": 99, "data": "d", "from": UNCLE}},
            "message not found",
        ),
        (
            {
                "callback": {
                    "chat_id": GROUP["id"],
                    "message_id": first["message_id"],
                    "data": "d",
                    "from": UNCLE,
                }
            },
            "message 1 has no button with callback_data 'd'",
        ),
        (
            {"callback": {"chat_id": GROUP["id"], "message_id": 1, "data": ["d"], "from": UNCLE}},
            "callback.data must be the callback_data of one of the message's buttons",
        ),
        (
            {"callback": {"chat_id": 42, "message_id": 1, "data": "d", "from": UNCLE}},
            "in a private chat only its user can press buttons",
        ),
        (
            {"callback": {"chat_id": GROUP["id"], "message_id": 1, "data": "d", "from": "李"}},
            "callback.from must be an object",
        ),
    ]
    for body, description in cases:
        error = await control.post("/sandbox/send", body, status=400)
        assert description in error["description"], body
    assert await snapshot(control) == before


async def test_bad_queries_to_the_read_endpoints(control: Control) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    for path, params, status, description in [
        ("/sandbox/chats/abc/messages", {}, 400, "chat id must be an integer"),
        ("/sandbox/chats/42/messages", {"since": "昨天"}, 400, "since must be an integer"),
        ("/sandbox/chats/42/messages", {"wait": "soon"}, 400, "wait must be a number"),
        ("/sandbox/chats/42/messages", {"wait": "nan"}, 400, "wait must be a number"),
        ("/sandbox/chats/42/messages", {"wait": "inf"}, 400, "wait must be a number"),
        ("/sandbox/chats/4040/messages", {}, 404, "chat not found"),
        ("/sandbox/callbacks/404", {}, 404, "callback query not found"),
        ("/sandbox/files/nope", {}, 404, "file not found"),
    ]:
        error = await control.get(path, status=status, **params)
        assert description in error["description"], path
    for body, description in [
        (b"[]", "the body must be a JSON object"),
        (b'{"enabled": "yes"}', "enabled must be true or false"),
        (b'{"enabled": true, "per_second": 0}', "per_second must be at least 1"),
    ]:
        response = await control.client.post("/sandbox/limits", content=body)
        assert response.status_code == 400 and description in response.json()["description"]
    # The refused {"enabled": true, "per_second": 0} changed nothing.
    assert (await control.get("/sandbox/bot"))["rate_limits"]["enabled"] is False


async def test_a_refused_send_stores_no_user_chat_or_file() -> None:
    """In process, to look inside: a 400 leaves the state exactly as it was."""
    state = SandboxState(TOKEN)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        for body in [
            message(photo=b64(png(2, 2)), text="图和字一起"),
            message(photo=b64(png(2, 2)), reply_to_message_id=1),
            message(document={"file_name": "a.txt", "base64": "eA=="}, caption=5),
            message(voice=True, forward_from={"first_name": ""}),
            {"chat": NEW_GROUP, "from": NEWCOMER, "sticker": True, "caption": "x"},
        ]:
            response = await client.post("/sandbox/send", json=body)
            assert response.status_code == 400, response.text
        assert (state.chats, state.files, list(state.updates)) == ({}, {}, [])
        assert list(state.users) == [state.bot.id]
        ok = await client.post("/sandbox/send", json=message(photo=b64(png(2, 2))))
        assert ok.status_code == 200
        assert len(state.files) == 1 and list(state.chats) == [77]


async def test_emoji_only_and_4096_characters_are_accepted(control: Control, bot: Bot) -> None:
    for text in ["😀", "👍🏻🙏", "🚨⚠️🚫💰", "😀" * 4096, "骗" * 4096]:
        sent = await control.send(GROUP, AUNTIE, text=text)
        assert sent["message"]["text"] == text
        assert "entities" not in sent["message"]  # as on Telegram: none, so no field
    updates = await bot.get_updates(timeout=0)
    texts = [u.message.text for u in updates if u.message]
    assert texts == ["😀", "👍🏻🙏", "🚨⚠️🚫💰", "😀" * 4096, "骗" * 4096]


async def test_sticker_voice_and_document_reach_ptb_and_download(
    control: Control, bot: Bot
) -> None:
    report = "转账记录：2024-05-01 支付宝 5000元\n".encode()
    await control.send(PRIVATE, AUNTIE, sticker={"emoji": "😡"})
    await control.send(PRIVATE, AUNTIE, voice={"duration": 2})
    sent = await control.send(
        PRIVATE,
        AUNTIE,
        document={"file_name": "转账记录.txt", "base64": b64(report)},
        caption="骗子让我转的",
    )
    assert sent["message"]["file_url"].startswith("/sandbox/files/")
    updates = await bot.get_updates(timeout=0)
    sticker, voice, document = (u.message for u in updates if u.message)

    assert sticker.sticker is not None and sticker.sticker.emoji == "😡"
    data = await (await sticker.sticker.get_file()).download_as_bytearray()
    assert bytes(data).startswith(b"RIFF") and b"WEBP" in bytes(data)

    assert voice.voice is not None and voice.voice.to_dict()["duration"] == 2
    data = await (await voice.voice.get_file()).download_as_bytearray()
    assert bytes(data).startswith(b"RIFF") and b"WAVE" in bytes(data)
    assert len(data) == 44 + 2 * 8000 * 2  # two seconds of 16-bit 8 kHz silence

    assert document.document is not None
    assert (document.document.file_name, document.caption) == ("转账记录.txt", "骗子让我转的")
    assert document.document.mime_type == "text/plain"
    got = await document.document.get_file()
    assert got.file_path is not None and got.file_path.endswith(".txt")
    assert bytes(await got.download_as_bytearray()) == report
    # The control API serves the same bytes.
    served = await control.client.get(sent["message"]["file_url"])
    assert served.content == report
