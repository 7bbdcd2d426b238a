"""The sandbox's own API (no token): play the users, look at the chats, break things on purpose.

Tests and the sandbox web page use it to do what a Telegram client would: post a message as a
resident in a private chat or a grid group (text, photo, sticker, voice, document, forwarded or
replying), press an inline button, and read every message in a chat, both directions, as it is
now. They also inject faults (a 429 with ``retry_after``, a 502, a slow getUpdates), turn on
the flood limits, and reset everything between tests.

Success answers are plain JSON objects; refusals use the Bot API's error shape, a 400 whose
description says which field is wrong and what it should be. A refused ``/sandbox/send``
changes nothing: every field is checked before the user, the chat, a file or the message is
stored.
"""

from __future__ import annotations

import asyncio
import json
import math
import mimetypes
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.sandbox.errors import ApiError
from bot.sandbox.markup import callback_data_of
from bot.sandbox.media import (
    MAX_DOCUMENT_BYTES,
    STICKER_SIZE,
    STICKER_WEBP,
    MediaError,
    decode_base64,
    read_image,
    silent_voice,
)
from bot.sandbox.methods import find_method
from bot.sandbox.models import CHAT_TYPES, PRIVATE, CallbackQuery, Chat, Fault, Message, User
from bot.sandbox.params import NOT_UTF8, Params, has_lone_surrogate
from bot.sandbox.state import SandboxState
from bot.sandbox.text import MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH, find_entities

MAX_WAIT = 30.0
MAX_RETRY_AFTER = 3600
MEDIA_KINDS = ("photo", "sticker", "voice", "document")
FORWARD_KINDS = ("forward_from", "forward_sender_name", "forward_from_chat")
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")


def invalid(reason: str) -> ApiError:
    """400 for a control request the sandbox cannot carry out."""
    return ApiError(400, f"Bad Request: {reason}")


def _not_found(reason: str) -> ApiError:
    return ApiError(404, f"Not Found: {reason}")


async def _json(request: Request, what: str) -> Any:
    """The request's JSON body (an empty body is ``{}``), refused unless it is Unicode text."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:  # also bytes that are not UTF-8
        raise invalid(f"the body must be {what}") from None
    if has_lone_surrogate(body):
        raise invalid(NOT_UTF8)
    return body


async def _json_body(request: Request) -> dict[str, Any]:
    body = await _json(request, "JSON")
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or value is None:
        raise invalid(f"{what} must be an integer")
    try:
        return Params({"v": value}).integer("v") or 0
    except ApiError:
        raise invalid(f"{what} must be an integer") from None


def _string(value: Any, what: str) -> str:
    """A non-empty string, or a 400 naming the field."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{what} must be a non-empty string")
    return value


def _optional_string(data: dict[str, Any], name: str, what: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    return _string(value, f"{what}.{name}")


def _wait_seconds(request: Request) -> float:
    try:
        wait = float(request.query_params.get("wait", "0") or 0)
    except ValueError:
        raise invalid("wait must be a number of seconds") from None
    if not math.isfinite(wait):
        raise invalid("wait must be a number of seconds")
    return min(max(wait, 0.0), MAX_WAIT)


async def _wait_until(state: SandboxState, ready: Any, seconds: float) -> None:
    """With the lock held, wait until ``ready()`` is true or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while not ready() and not state.closing:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            await asyncio.wait_for(state.changed.wait(), remaining)
        except asyncio.TimeoutError:
            return


# --- users and chats -------------------------------------------------------------------------


@dataclass
class _Sender:
    """A checked ``from``: the user to create or update once the whole request is valid."""

    id: int
    first_name: str | None
    names: dict[str, str] = field(default_factory=dict)  # last_name, username, language_code

    def commit(self, state: SandboxState) -> User:
        user = state.users.get(self.id)
        if user is None:
            assert self.first_name is not None  # checked by _sender
            user = User(self.id, self.first_name)
            state.users[self.id] = user
        elif self.first_name is not None:
            user.first_name = self.first_name
        for name, value in self.names.items():
            setattr(user, name, value)
        return user


def _sender(state: SandboxState, data: Any, what: str = "from") -> _Sender:
    """Check the user described by ``data``; a new user needs a first_name."""
    if not isinstance(data, dict):
        raise invalid(f"{what} must be an object with an id and a first_name")
    user_id = _integer(data.get("id"), f"{what}.id")
    if user_id <= 0 or user_id == state.bot.id:
        raise invalid(f"{what}.id must be a positive id that is not the bot's")
    first_name = _optional_string(data, "first_name", what)
    if first_name is None and user_id not in state.users:
        raise invalid(f"{what}.first_name is needed for a new user")
    names = {}
    for name in ("last_name", "username", "language_code"):
        value = _optional_string(data, name, what)
        if value is not None:
            names[name] = value
    return _Sender(user_id, first_name, names)


@dataclass
class _NewChat:
    """A checked chat that does not exist yet."""

    id: int
    type: str
    title: str | None
    username: str | None

    def commit(self, state: SandboxState, user: User) -> Chat:
        if self.type == PRIVATE:
            return state.new_chat(self.id, PRIVATE, title=None, user=user)
        return state.new_chat(
            self.id, self.type, title=self.title, user=None, username=self.username
        )


def _chat(state: SandboxState, data: Any, sender: _Sender) -> Chat | _NewChat:
    """The chat described by ``data``: an existing one (of the same type), or a new one."""
    if not isinstance(data, dict):
        raise invalid('chat must be an object like {"id": 42, "type": "private"}')
    chat_id = _integer(data.get("id"), "chat.id")
    chat_type = data.get("type")
    if chat_type is not None and chat_type not in CHAT_TYPES:
        raise invalid(f"chat.type must be one of {', '.join(CHAT_TYPES)}")
    existing = state.chats.get(chat_id)
    if existing is not None:
        if chat_type is not None and chat_type != existing.type:
            raise invalid(f"chat {chat_id} is a {existing.type} chat, not a {chat_type} one")
        if existing.is_private and (existing.user is None or existing.user.id != sender.id):
            raise invalid("in a private chat only its user can send")
        return existing
    chat_type = chat_type or (PRIVATE if chat_id > 0 else "supergroup")
    if chat_type == PRIVATE:
        if chat_id != sender.id:
            raise invalid("a private chat's id is its user's id")
        return _NewChat(chat_id, PRIVATE, None, None)
    if chat_id >= 0:
        raise invalid("a group's id is negative")
    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise invalid("chat.title must be a string")
    username = _optional_string(data, "username", "chat")
    return _NewChat(chat_id, chat_type, (title or "").strip() or f"群 {chat_id}", username)


# --- content of a sent message ---------------------------------------------------------------


@dataclass
class _Media:
    """A checked photo, sticker, voice or document: its file, stored once the request is valid."""

    kind: str
    data: bytes
    folder: str
    extension: str
    mime_type: str
    fields: dict[str, Any]  # the media object's own fields (width, emoji, duration, ...)

    def commit(self, state: SandboxState) -> tuple[dict[str, Any], str]:
        stored = state.store_file(self.data, self.folder, self.extension, self.mime_type)
        common = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        media = {**common, **self.fields}
        return {self.kind: [media] if self.kind == "photo" else media}, stored.file_id


def _given(body: dict[str, Any], name: str) -> bool:
    """A media or forward field counts when present, except ``null`` and ``false``."""
    return body.get(name) is not None and body.get(name) is not False


def _media(body: dict[str, Any]) -> _Media | None:
    """The message's media, checked and decoded (nothing stored yet)."""
    kinds = [kind for kind in MEDIA_KINDS if _given(body, kind)]
    if len(kinds) > 1:
        raise invalid(f"send one of photo, sticker, voice, document, not {', '.join(kinds)}")
    if not kinds:
        return None
    kind, value = kinds[0], body[kinds[0]]
    try:
        if kind == "photo":
            image = read_image(decode_base64(value, "photo"))
            size = {"width": image.width, "height": image.height}
            return _Media(kind, image.data, "photos", image.extension, image.mime_type, size)
        if kind == "sticker":
            return _sticker(value)
        if kind == "voice":
            return _voice(value)
        return _document(value)
    except MediaError as exc:
        raise invalid(str(exc)) from None


def _sticker(value: Any) -> _Media:
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise invalid('sticker must be true or {"emoji": "👍"}')
    emoji = _optional_string(value, "emoji", "sticker") or "👍"
    if len(emoji) > 16:
        raise invalid("sticker.emoji must be one emoji")
    fields = {
        "type": "regular",
        "width": STICKER_SIZE,
        "height": STICKER_SIZE,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
    }
    return _Media("sticker", STICKER_WEBP, "stickers", "webp", "image/webp", fields)


def _mime_type(value: dict[str, Any], what: str, prefix: str = "") -> str | None:
    mime_type = _optional_string(value, "mime_type", what)
    if mime_type is not None and (
        "/" not in mime_type
        or not mime_type.startswith(prefix)
        or any(c.isspace() for c in mime_type)
    ):
        raise invalid(f"{what}.mime_type must be a MIME type like {prefix or 'text/'}...")
    return mime_type


def _voice(value: Any) -> _Media:
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise invalid('voice must be true or {"duration": 3, "base64": "...", "mime_type": ...}')
    duration = _integer(value.get("duration", 1), "voice.duration")
    if not 1 <= duration <= 600:
        raise invalid("voice.duration must be 1 to 600 seconds")
    mime_type = _mime_type(value, "voice", "audio/")
    if value.get("base64") is not None:
        data = decode_base64(value["base64"], "voice.base64")
        mime_type = mime_type or "audio/ogg"
    else:
        data, mime_type = silent_voice(duration), mime_type or "audio/wav"
    extension = (
        "oga" if mime_type == "audio/ogg" else (mimetypes.guess_extension(mime_type) or ".bin")
    )
    fields = {"duration": duration, "mime_type": mime_type}
    return _Media("voice", data, "voice", extension.lstrip("."), mime_type, fields)


def _document(value: Any) -> _Media:
    if not isinstance(value, dict) or not isinstance(value.get("file_name"), str):
        raise invalid('document must be {"file_name": "...", "base64": "..."}')
    name = _string(value["file_name"], "document.file_name").strip()
    if len(name) > 255 or any(char in name for char in "/\\\0"):
        raise invalid("document.file_name must be a plain file name (no / or \\, 255 at most)")
    data = decode_base64(value.get("base64"), "document.base64")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise invalid("document is too big (50 MB at most)")
    mime_type = (
        _mime_type(value, "document")
        or mimetypes.guess_type(name)[0]
        or "application/octet-stream"
    )
    extension = name.rsplit(".", 1)[1] if "." in name else ""
    extension = extension.lower() if _EXTENSION.match(extension) else "bin"
    fields = {"file_name": name, "mime_type": mime_type}
    return _Media("document", data, "documents", extension, mime_type, fields)


def _forward_origin(body: dict[str, Any]) -> dict[str, Any] | None:
    """``forward_origin`` from the forward_from / forward_sender_name / forward_from_chat field."""
    given = [key for key in FORWARD_KINDS if _given(body, key)]
    if not given:
        return None
    if len(given) > 1:
        raise invalid(f"give one of {', '.join(given)}")
    date = _integer(body.get("forward_date", int(time.time())), "forward_date")
    if date < 0:
        raise invalid("forward_date must be a Unix time")
    value = body[given[0]]
    if given[0] == "forward_sender_name":
        name = _string(value, "forward_sender_name")
        return {"type": "hidden_user", "date": date, "sender_user_name": name}
    if given[0] == "forward_from":
        if not isinstance(value, dict) or not isinstance(value.get("first_name"), str):
            raise invalid("forward_from must be an object with a first_name")
        first_name = _string(value["first_name"], "forward_from.first_name")
        user_id = value.get("id")
        if user_id is None:  # a stranger: a stable id made from the name
            user_id = 6_000_000_000 + zlib.crc32(first_name.encode("utf-8"))
        user_id = _integer(user_id, "forward_from.id")
        if user_id <= 0:
            raise invalid("forward_from.id must be a positive id")
        is_bot = value.get("is_bot", False)
        if not isinstance(is_bot, bool):
            raise invalid("forward_from.is_bot must be true or false")
        user = User(
            user_id,
            first_name,
            is_bot=is_bot,
            last_name=_optional_string(value, "last_name", "forward_from"),
            username=_optional_string(value, "username", "forward_from"),
        )
        return {"type": "user", "date": date, "sender_user": user.to_api()}
    if not isinstance(value, dict) or not isinstance(value.get("title"), str):
        raise invalid("forward_from_chat must be an object with an id and a title")
    chat_type = value.get("type", "channel")
    if chat_type not in ("channel", "group", "supergroup"):
        raise invalid("forward_from_chat.type must be one of channel, group, supergroup")
    chat = {
        "id": _integer(value.get("id"), "forward_from_chat.id"),
        "type": chat_type,
        "title": _string(value["title"], "forward_from_chat.title"),
    }
    if chat["id"] >= 0:
        raise invalid("forward_from_chat.id must be negative, as a channel's or group's is")
    username = _optional_string(value, "username", "forward_from_chat")
    if username is not None:
        chat["username"] = username
    if chat_type == "channel":
        message_id = _integer(value.get("message_id", 1), "forward_from_chat.message_id")
        if message_id < 1:
            raise invalid("forward_from_chat.message_id must be at least 1")
        return {"type": "channel", "date": date, "chat": chat, "message_id": message_id}
    return {"type": "chat", "date": date, "sender_chat": chat}


def _text(body: dict[str, Any], media: _Media | None) -> tuple[str | None, str | None]:
    text, caption = body.get("text"), body.get("caption")
    for name, value in (("text", text), ("caption", caption)):
        if value is not None and not isinstance(value, str):
            raise invalid(f"{name} must be a string")
    if media is not None:
        if text:
            raise invalid("a photo, sticker, voice or document takes a caption, not a text")
        if caption and media.kind == "sticker":
            raise invalid("a sticker takes no caption")
        if caption is not None and len(caption) > MAX_CAPTION_LENGTH:
            raise invalid("message caption is too long")
        return None, caption if caption and caption.strip() else None
    if caption:
        raise invalid("a caption needs a photo, a voice or a document")
    if text is None or not text.strip():
        raise invalid("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise invalid("message is too long")
    return text, None


def _reply_to(body: dict[str, Any], chat: Chat | _NewChat) -> Message | None:
    if body.get("reply_to_message_id") is None:
        return None
    message_id = _integer(body["reply_to_message_id"], "reply_to_message_id")
    reply_to = chat.message(message_id) if isinstance(chat, Chat) else None
    if reply_to is None:
        raise invalid("message to be replied not found")
    return reply_to


def deliver_message(state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """A user's message: checked whole, then stored in the chat and queued (lock held)."""
    sender = _sender(state, body.get("from"))
    target = _chat(state, body.get("chat"), sender)
    media = _media(body)
    text, caption = _text(body, media)
    reply_to = _reply_to(body, target)
    forward_origin = _forward_origin(body)

    user = sender.commit(state)
    chat = target if isinstance(target, Chat) else target.commit(state, user)
    state.add_member(chat, user)
    content, file_id = media.commit(state) if media is not None else ({}, None)
    message = state.append_message(
        chat,
        user,
        text=text,
        entities=find_entities(text) if text else [],
        caption=caption,
        caption_entities=find_entities(caption) if caption else [],
        media=content,
        file_id=file_id,
        reply_to=reply_to,
        forward_origin=forward_origin,
    )
    update_id = None
    if chat.bot_is_member:  # a group the bot left does not reach it
        update_id = state.push_update("message", message.to_api()).update_id
    return {"update_id": update_id, "message": message.to_control()}


def press_button(state: SandboxState, data: Any) -> dict[str, Any]:
    """A press of an inline button on one of the bot's messages (lock held)."""
    if not isinstance(data, dict):
        raise invalid(
            'callback must be {"chat_id": ..., "message_id": ..., "data": ..., "from": ...}'
        )
    chat = state.chats.get(_integer(data.get("chat_id"), "callback.chat_id"))
    if chat is None:
        raise invalid("chat not found")
    owner = chat.user if chat.is_private else None
    sender = None  # in a private chat "from" may be left out: it is the chat's user
    if data.get("from") is not None or owner is None:
        sender = _sender(state, data.get("from"), "callback.from")
        if chat.is_private and (owner is None or owner.id != sender.id):
            raise invalid("in a private chat only its user can press buttons")
    message = chat.message(_integer(data.get("message_id"), "callback.message_id"))
    if message is None:
        raise invalid("message not found")
    pressed = data.get("data")
    if not isinstance(pressed, str):
        raise invalid("callback.data must be the callback_data of one of the message's buttons")
    if not message.from_bot or pressed not in callback_data_of(message.reply_markup):
        raise invalid(f"message {message.message_id} has no button with callback_data {pressed!r}")
    if not chat.bot_is_member:
        raise invalid("the bot has left this chat")
    presser = sender.commit(state) if sender is not None else owner
    assert presser is not None  # either a checked sender or the private chat's user
    state.add_member(chat, presser)
    query = CallbackQuery(
        state.new_callback_id(), presser, message, pressed, state.chat_instance(chat)
    )
    state.callbacks[query.id] = query
    update = state.push_update("callback_query", query.to_api())
    return {"update_id": update.update_id, "callback_query": query.to_control()}


# --- faults and limits -----------------------------------------------------------------------


def _fault(data: Any) -> Fault:
    if not isinstance(data, dict) or not isinstance(data.get("method"), str):
        raise invalid('a fault is {"method": "sendMessage" | "*", "status": 429, "times": 1, ...}')
    if data["method"] != "*" and find_method(data["method"]) is None:
        raise invalid(f"method {data['method']!r} is not a Bot API method the sandbox serves")
    status = data.get("status")
    if status is not None:
        status = _integer(status, "status")
        if not 400 <= status <= 599:
            raise invalid("status must be an HTTP error status (400-599)")
    delay = data.get("delay", 0.0)
    # (NaN fails the range test too)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 120:
        raise invalid("delay must be 0 to 120 seconds")
    if status is None and not delay:
        raise invalid("a fault needs a status or a delay")
    retry_after = data.get("retry_after")
    if retry_after is not None:
        if status != 429:
            raise invalid("retry_after goes with status 429")
        retry_after = _integer(retry_after, "retry_after")
        if not 1 <= retry_after <= MAX_RETRY_AFTER:
            raise invalid(f"retry_after must be 1 to {MAX_RETRY_AFTER} seconds")
    elif status == 429:
        retry_after = 1
    times = data.get("times", 1)
    if times is not None:
        times = _integer(times, "times")
        if times < 1:
            raise invalid("times must be at least 1 (or null: until cleared)")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid("description must be a string")
    method = data["method"].lower() if data["method"] != "*" else "*"
    return Fault(method, status, retry_after, float(delay), description, times)


# --- endpoints -------------------------------------------------------------------------------


class ControlApi:
    """The endpoints under ``/sandbox/`` that take no token."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def send(self, request: Request) -> Response:
        body = await _json_body(request)
        async with self.state.changed:
            if "callback" in body:
                return JSONResponse(press_button(self.state, body["callback"]))
            return JSONResponse(deliver_message(self.state, body))

    async def chats(self, request: Request) -> Response:
        async with self.state.changed:
            return JSONResponse(
                {"chats": [chat.to_control() for chat in self.state.chats.values()]}
            )

    async def messages(self, request: Request) -> Response:
        chat_id = _integer(request.path_params["chat_id"], "chat id")
        since = _integer(request.query_params.get("since", "0") or "0", "since")
        wait = _wait_seconds(request)
        async with self.state.changed:
            chat = self.state.chats.get(chat_id)
            if chat is None:
                raise _not_found("chat not found")
            await _wait_until(self.state, lambda: len(chat.messages) > since, wait)
            messages = [m.to_control() for m in chat.messages if m.message_id > since]
            return JSONResponse({"chat": chat.to_control(), "messages": messages})

    async def callback(self, request: Request) -> Response:
        query_id = request.path_params["query_id"]
        wait = _wait_seconds(request)
        async with self.state.changed:
            query = self.state.callbacks.get(query_id)
            if query is None:
                raise _not_found("callback query not found")
            await _wait_until(self.state, lambda: query.answer is not None, wait)
            return JSONResponse(query.to_control())

    async def file(self, request: Request) -> Response:
        async with self.state.changed:
            stored = self.state.files.get(request.path_params["file_id"])
        if stored is None:
            raise _not_found("file not found")
        return Response(stored.data, media_type=stored.mime_type)

    async def bot(self, request: Request) -> Response:
        async with self.state.changed:
            state = self.state
            commands = [
                {"scope": json.loads(scope), "language_code": language, "commands": listed}
                for (scope, language), listed in state.commands.items()
            ]
            return JSONResponse(
                {
                    "bot": state.bot.to_api(),
                    "commands": commands,
                    "webhook": state.webhook_info(),
                    "pending_update_count": len(state.updates),
                    "rate_limits": state.rate_limits.to_json(),
                    "faults": [fault.to_json() for fault in state.faults],
                }
            )

    async def add_faults(self, request: Request) -> Response:
        raw = await _json(request, "a JSON fault or a list of them")
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise invalid("the body must be a JSON fault or a list of them")
        faults = [_fault(item) for item in items]
        async with self.state.changed:
            self.state.faults.extend(faults)
            return JSONResponse({"faults": [fault.to_json() for fault in self.state.faults]})

    async def list_faults(self, request: Request) -> Response:
        async with self.state.changed:
            return JSONResponse({"faults": [fault.to_json() for fault in self.state.faults]})

    async def clear_faults(self, request: Request) -> Response:
        async with self.state.changed:
            self.state.faults.clear()
        return JSONResponse({"faults": []})

    async def limits(self, request: Request) -> Response:
        body = await _json_body(request)
        changes: dict[str, Any] = {}
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise invalid("enabled must be true or false")
            changes["enabled"] = body["enabled"]
        for name in ("per_second", "per_group_per_minute"):
            if name in body:
                value = _integer(body[name], name)
                if value < 1:
                    raise invalid(f"{name} must be at least 1")
                changes[name] = value
        async with self.state.changed:
            limits = self.state.rate_limits
            for name, value in changes.items():
                setattr(limits, name, value)
            return JSONResponse({**limits.to_json(), "refused": self.state.flood_refusals})

    async def reset(self, request: Request) -> Response:
        await self.state.reset()
        return JSONResponse({"ok": True})

    async def health(self, request: Request) -> Response:
        async with self.state.changed:
            return JSONResponse(
                {
                    "ok": True,
                    "bot": self.state.bot.username,
                    "chats": len(self.state.chats),
                    "pending_update_count": len(self.state.updates),
                    "webhook": self.state.webhook is not None,
                }
            )
