"""The sandbox's own API (no token): play the users, look at the chats, break things on purpose.

Tests and the sandbox web page use it to do what a Telegram client would: post a message as a
resident in a private chat or a grid group (text, photo, sticker, voice, document, forwarded or
replying), press an inline button, and read every message in a chat, both directions, as it is
now. They also inject faults (a 429 with ``retry_after``, a 502, a slow getUpdates), turn on
the flood limits, and reset everything between tests.

Success answers are plain JSON objects; refusals use the Bot API's error shape.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
import zlib
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
from bot.sandbox.models import CHAT_TYPES, PRIVATE, CallbackQuery, Chat, Fault, User
from bot.sandbox.params import Params
from bot.sandbox.state import SandboxState
from bot.sandbox.text import MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH, find_entities

MAX_WAIT = 30.0


def invalid(reason: str) -> ApiError:
    """400 for a control request the sandbox cannot carry out."""
    return ApiError(400, f"Bad Request: {reason}")


def _not_found(reason: str) -> ApiError:
    return ApiError(404, f"Not Found: {reason}")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise invalid("the body must be JSON") from None
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


def _wait_seconds(request: Request) -> float:
    try:
        wait = float(request.query_params.get("wait", "0") or 0)
    except ValueError:
        raise invalid("wait must be a number of seconds") from None
    return min(max(wait, 0.0), MAX_WAIT)


async def _wait_until(state: SandboxState, ready: Any, seconds: float) -> None:
    """With the lock held, wait until ``ready()`` is true or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while not ready():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            await asyncio.wait_for(state.changed.wait(), remaining)
        except asyncio.TimeoutError:
            return


# --- users and chats -------------------------------------------------------------------------


def _user(state: SandboxState, data: Any, what: str = "from") -> User:
    """The user described by ``data``, created on first use; names given later update it."""
    if not isinstance(data, dict):
        raise invalid(f"{what} must be an object with an id and a first_name")
    user_id = _integer(data.get("id"), f"{what}.id")
    if user_id <= 0 or user_id == state.bot.id:
        raise invalid(f"{what}.id must be a positive id that is not the bot's")
    user = state.users.get(user_id)
    first_name = data.get("first_name")
    if first_name is not None and (not isinstance(first_name, str) or not first_name.strip()):
        raise invalid(f"{what}.first_name must be a non-empty string")
    if user is None:
        if first_name is None:
            raise invalid(f"{what}.first_name is needed for a new user")
        user = User(user_id, first_name)
        state.users[user_id] = user
    elif first_name is not None:
        user.first_name = first_name
    for name in ("last_name", "username", "language_code"):
        if isinstance(data.get(name), str):
            setattr(user, name, data[name])
    return user


def _chat(state: SandboxState, data: Any, sender: User) -> Chat:
    """The chat described by ``data``, created on first use; an existing one keeps its type."""
    if not isinstance(data, dict):
        raise invalid('chat must be an object like {"id": 42, "type": "private"}')
    chat_id = _integer(data.get("id"), "chat.id")
    existing = state.chats.get(chat_id)
    if existing is not None:
        if existing.is_private and existing.user is not sender:
            raise invalid("in a private chat only its user can send")
        return existing
    chat_type = data.get("type") or (PRIVATE if chat_id > 0 else "supergroup")
    if chat_type not in CHAT_TYPES:
        raise invalid(f"chat.type must be one of {', '.join(CHAT_TYPES)}")
    if chat_type == PRIVATE:
        if chat_id != sender.id:
            raise invalid("a private chat's id is its user's id")
        return state.new_chat(chat_id, PRIVATE, title=None, user=sender)
    if chat_id >= 0:
        raise invalid("a group's id is negative")
    title = data.get("title") or f"群 {chat_id}"
    if not isinstance(title, str):
        raise invalid("chat.title must be a string")
    username = data.get("username") if isinstance(data.get("username"), str) else None
    return state.new_chat(chat_id, chat_type, title=title, user=None, username=username)


# --- content of a sent message ---------------------------------------------------------------


def _media(state: SandboxState, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The media object of the message (``{"photo": [...]}`` etc.) and its file id."""
    kinds = [kind for kind in ("photo", "sticker", "voice", "document") if body.get(kind)]
    if len(kinds) > 1:
        raise invalid(f"send one of photo, sticker, voice, document, not {', '.join(kinds)}")
    if not kinds:
        return {}, None
    kind, value = kinds[0], body[kinds[0]]
    try:
        if kind == "photo":
            image = read_image(decode_base64(value, "photo"))
            stored = state.store_file(image.data, "photos", image.extension, image.mime_type)
            size = {**_file_fields(stored), "width": image.width, "height": image.height}
            return {"photo": [size]}, stored.file_id
        if kind == "sticker":
            emoji = value.get("emoji", "👍") if isinstance(value, dict) else "👍"
            stored = state.store_file(STICKER_WEBP, "stickers", "webp", "image/webp")
            sticker = {
                **_file_fields(stored),
                "type": "regular",
                "width": STICKER_SIZE,
                "height": STICKER_SIZE,
                "is_animated": False,
                "is_video": False,
                "emoji": emoji,
            }
            return {"sticker": sticker}, stored.file_id
        if kind == "voice":
            return _voice(state, value if isinstance(value, dict) else {})
        return _document(state, value)
    except MediaError as exc:
        raise invalid(str(exc)) from None


def _file_fields(stored: Any) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
    }


def _voice(state: SandboxState, value: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    duration = _integer(value.get("duration", 1), "voice.duration")
    if not 1 <= duration <= 600:
        raise invalid("voice.duration must be 1 to 600 seconds")
    if value.get("base64"):
        data = decode_base64(value["base64"], "voice.base64")
        mime_type = value.get("mime_type") or "audio/ogg"
    else:
        data, mime_type = silent_voice(duration), "audio/wav"
    extension = (
        "oga" if mime_type == "audio/ogg" else (mimetypes.guess_extension(mime_type) or ".bin")
    )
    stored = state.store_file(data, "voice", extension.lstrip("."), mime_type)
    voice = {**_file_fields(stored), "duration": duration, "mime_type": mime_type}
    return {"voice": voice}, stored.file_id


def _document(state: SandboxState, value: Any) -> tuple[dict[str, Any], str | None]:
    if not isinstance(value, dict) or not isinstance(value.get("file_name"), str):
        raise invalid('document must be {"file_name": "...", "base64": "..."}')
    data = decode_base64(value.get("base64"), "document.base64")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise invalid("document is too big (50 MB at most)")
    name = value["file_name"]
    mime_type = (
        value.get("mime_type") or mimetypes.guess_type(name)[0] or "application/octet-stream"
    )
    extension = name.rsplit(".", 1)[1] if "." in name else "bin"
    stored = state.store_file(data, "documents", extension, mime_type)
    document = {**_file_fields(stored), "file_name": name, "mime_type": mime_type}
    return {"document": document}, stored.file_id


def _forward_origin(state: SandboxState, body: dict[str, Any]) -> dict[str, Any] | None:
    """``forward_origin`` from the forward_from / forward_sender_name / forward_from_chat field."""
    given = [
        key
        for key in ("forward_from", "forward_sender_name", "forward_from_chat")
        if body.get(key)
    ]
    if not given:
        return None
    if len(given) > 1:
        raise invalid(f"give one of {', '.join(given)}")
    date = _integer(body.get("forward_date", int(time.time())), "forward_date")
    value = body[given[0]]
    if given[0] == "forward_sender_name":
        if not isinstance(value, str):
            raise invalid("forward_sender_name must be a string")
        return {"type": "hidden_user", "date": date, "sender_user_name": value}
    if given[0] == "forward_from":
        if not isinstance(value, dict) or not isinstance(value.get("first_name"), str):
            raise invalid("forward_from must be an object with a first_name")
        user_id = value.get("id")
        if user_id is None:  # a stranger: a stable id made from the name
            user_id = 6_000_000_000 + zlib.crc32(value["first_name"].encode("utf-8"))
        user = User(
            _integer(user_id, "forward_from.id"),
            value["first_name"],
            is_bot=bool(value.get("is_bot", False)),
            last_name=value.get("last_name"),
            username=value.get("username"),
        )
        return {"type": "user", "date": date, "sender_user": user.to_api()}
    if not isinstance(value, dict) or not isinstance(value.get("title"), str):
        raise invalid("forward_from_chat must be an object with an id and a title")
    chat = {
        "id": _integer(value.get("id"), "forward_from_chat.id"),
        "type": value.get("type", "channel"),
        "title": value["title"],
    }
    if isinstance(value.get("username"), str):
        chat["username"] = value["username"]
    if chat["type"] == "channel":
        message_id = _integer(value.get("message_id", 1), "forward_from_chat.message_id")
        return {"type": "channel", "date": date, "chat": chat, "message_id": message_id}
    return {"type": "chat", "date": date, "sender_chat": chat}


def _text(body: dict[str, Any], has_media: bool) -> tuple[str | None, str | None]:
    text, caption = body.get("text"), body.get("caption")
    for name, value in (("text", text), ("caption", caption)):
        if value is not None and not isinstance(value, str):
            raise invalid(f"{name} must be a string")
    if has_media:
        if text:
            raise invalid("a photo, sticker, voice or document takes a caption, not a text")
        if caption is not None and len(caption) > MAX_CAPTION_LENGTH:
            raise invalid("message caption is too long")
        return None, caption or None
    if caption:
        raise invalid("a caption needs a photo or a document")
    if text is None or not text.strip():
        raise invalid("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise invalid("message is too long")
    return text, None


def deliver_message(state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """A user's message: stored in the chat and queued as an update (lock held)."""
    sender = _user(state, body.get("from"))
    chat = _chat(state, body.get("chat"), sender)
    state.add_member(chat, sender)
    media, file_id = _media(state, body)
    text, caption = _text(body, bool(media))
    reply_to = None
    if body.get("reply_to_message_id") is not None:
        reply_to = chat.message(_integer(body["reply_to_message_id"], "reply_to_message_id"))
        if reply_to is None:
            raise invalid("message to be replied not found")
    message = state.append_message(
        chat,
        sender,
        text=text,
        entities=find_entities(text) if text else [],
        caption=caption,
        caption_entities=find_entities(caption) if caption else [],
        media=media,
        file_id=file_id,
        reply_to=reply_to,
        forward_origin=_forward_origin(state, body),
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
    if data.get("from") is None and chat.is_private and chat.user is not None:
        sender = chat.user
    else:
        sender = _user(state, data.get("from"), "callback.from")
    if chat.is_private and chat.user is not sender:
        raise invalid("in a private chat only its user can press buttons")
    message = chat.message(_integer(data.get("message_id"), "callback.message_id"))
    if message is None:
        raise invalid("message not found")
    pressed = data.get("data")
    if not message.from_bot or pressed not in callback_data_of(message.reply_markup):
        raise invalid(f"message {message.message_id} has no button with callback_data {pressed!r}")
    if not chat.bot_is_member:
        raise invalid("the bot has left this chat")
    state.add_member(chat, sender)
    query = CallbackQuery(
        state.new_callback_id(), sender, message, pressed, state.chat_instance(chat)
    )
    state.callbacks[query.id] = query
    update = state.push_update("callback_query", query.to_api())
    return {"update_id": update.update_id, "callback_query": query.to_control()}


# --- faults and limits -----------------------------------------------------------------------


def _fault(data: Any) -> Fault:
    if not isinstance(data, dict) or not isinstance(data.get("method"), str):
        raise invalid('a fault is {"method": "sendMessage" | "*", "status": 429, "times": 1, ...}')
    status = data.get("status")
    if status is not None:
        status = _integer(status, "status")
        if not 400 <= status <= 599:
            raise invalid("status must be an HTTP error status (400-599)")
    delay = data.get("delay", 0.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 120:
        raise invalid("delay must be 0 to 120 seconds")
    if status is None and not delay:
        raise invalid("a fault needs a status or a delay")
    retry_after = data.get("retry_after")
    if retry_after is not None:
        retry_after = _integer(retry_after, "retry_after")
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
        try:
            raw = json.loads(await request.body())
        except ValueError:
            raise invalid("the body must be a JSON fault or a list of them") from None
        items = raw if isinstance(raw, list) else [raw]
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
        async with self.state.changed:
            limits = self.state.rate_limits
            if "enabled" in body:
                if not isinstance(body["enabled"], bool):
                    raise invalid("enabled must be true or false")
                limits.enabled = body["enabled"]
            for name in ("per_second", "per_group_per_minute"):
                if name in body:
                    value = _integer(body[name], name)
                    if value < 1:
                        raise invalid(f"{name} must be at least 1")
                    setattr(limits, name, value)
            return JSONResponse(limits.to_json())

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
