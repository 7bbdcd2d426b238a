"""The Bot API methods the sandbox serves, each checked and answered as Telegram does.

A method is an ``async def (state, params)`` registered under its name; names are matched
case-insensitively, as the Bot API does. The server calls them with the state's lock held, so
each one sees and changes the state atomically; only getUpdates waits, and it releases the lock
while it does (``state.changed.wait()``).

Refusals use Telegram's own descriptions where they are known ("message text is empty", "chat
not found", "message to be replied not found", "message is not modified: ..."), so a bot's
error handling can be tested against the words it will meet in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import ApiError, bad_request
from bot.sandbox.markup import parse_reply_markup
from bot.sandbox.media import MAX_DOWNLOAD_BYTES
from bot.sandbox.models import ADMINISTRATOR, CREATOR, LEFT, Chat, Message, User, Webhook
from bot.sandbox.params import Params
from bot.sandbox.state import SandboxState
from bot.sandbox.text import MAX_TEXT_LENGTH, HtmlError, parse_html
from bot.sandbox.webhook import start_webhook_sender


@dataclass(frozen=True)
class Answer:
    """A result with Telegram's optional ``description`` beside it (setWebhook has one)."""

    result: Any
    description: str | None = None


Handler = Callable[[SandboxState, Params], Awaitable[Any]]
METHODS: dict[str, Handler] = {}


def _method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = handler
        return handler

    return register


def find_method(name: str) -> Handler | None:
    return METHODS.get(name.lower())


# --- shared checks ---------------------------------------------------------------------------

_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)  # fmt: skip
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_SCOPES = frozenset(
    {
        "default", "all_private_chats", "all_group_chats", "all_chat_administrators",
        "chat", "chat_administrators", "chat_member",
    }
)  # fmt: skip
_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
}
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)


def _message_id(params: Params) -> int:
    message_id = params.integer("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    return message_id


def _checked_text(params: Params) -> tuple[str, str | None, list[dict[str, Any]]]:
    """The ``text``, its parse mode and explicit entities, refused as Telegram refuses them."""
    text = params.string("text")
    parse_mode = params.string("parse_mode") or None
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    visible = text
    if parse_mode is not None:
        mode = parse_mode.lower()
        if mode == "html":
            try:
                visible = parse_html(text)
            except HtmlError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
            parse_mode = "HTML"
        elif mode in {"markdown", "markdownv2"}:
            raise bad_request(f"parse_mode {parse_mode} is not supported by the sandbox; use HTML")
        else:
            raise bad_request("unsupported parse_mode")
    if not visible.strip():
        raise bad_request("message text is empty")
    if len(visible) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    entities = params.json_value("entities") if parse_mode is None else None
    return text, parse_mode, _checked_entities(entities)


def _checked_entities(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise bad_request("can't parse entities JSON object")
    for entity in value:
        if not isinstance(entity.get("type"), str):
            raise bad_request("can't parse entities: entity type is missing")
        for field in ("offset", "length"):
            if not isinstance(entity.get(field), int) or isinstance(entity.get(field), bool):
                raise bad_request(f'can\'t parse entities: field "{field}" must be an Integer')
    return [dict(entity) for entity in value]


def _link_preview_options(params: Params) -> dict[str, Any] | None:
    value = params.json_value("link_preview_options")
    if value is not None and not isinstance(value, dict):
        raise bad_request("can't parse link preview options JSON object")
    return value


def _reply_target(state: SandboxState, chat: Chat, params: Params) -> Message | None:
    """What the new message replies to: ``reply_parameters`` or the legacy parameters."""
    reply = params.json_value("reply_parameters")
    if reply is not None:
        if not isinstance(reply, dict) or "message_id" not in reply:
            raise bad_request("can't parse reply parameters JSON object")
        fields = Params(reply)
        message_id = fields.integer("message_id")
        allow_without = fields.flag("allow_sending_without_reply")
        target_chat = state.resolve_chat(fields.chat_id()) if fields.present("chat_id") else chat
    else:
        message_id = params.integer("reply_to_message_id")
        allow_without = params.flag("allow_sending_without_reply")
        target_chat = chat
    if message_id is None:
        return None
    target = target_chat.message(message_id)
    if target is None and not allow_without:
        raise bad_request("message to be replied not found")
    return target


def _editable(state: SandboxState, params: Params) -> Message:
    if params.present("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")  # the sandbox has no inline messages
    chat = state.chat_for_bot(params.chat_id())
    message = chat.message(_message_id(params))
    if message is None:
        raise bad_request("message to edit not found")
    if not message.from_bot:
        raise bad_request("message can't be edited")
    return message


def _inline_only(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    if markup is not None and "inline_keyboard" not in markup:
        raise bad_request("reply markup of an edited message must be an inline keyboard")
    return markup


def _inline_markup(message: Message) -> dict[str, Any] | None:
    markup = message.reply_markup
    return markup if markup is not None and "inline_keyboard" in markup else None


def _record_edit(state: SandboxState, message: Message) -> None:
    message.edits.append(
        {
            "date": message.edit_date or message.date,
            "text": message.text,
            "parse_mode": message.parse_mode,
            "reply_markup": message.reply_markup,
        }
    )
    message.edit_date = int(time.time())
    state.notify()


def _member(state: SandboxState, chat: Chat, user: User) -> dict[str, Any]:
    status = state.member_status(chat, user)
    member: dict[str, Any] = {"status": status, "user": user.to_api()}
    if status == CREATOR:
        member["is_anonymous"] = False
    elif status == ADMINISTRATOR:
        member.update(_ADMIN_RIGHTS)
    return member


def _scope_key(state: SandboxState, params: Params) -> str:
    scope = params.json_value("scope")
    if scope is None:
        scope = {"type": "default"}
    kind = scope.get("type") if isinstance(scope, dict) else None
    if not isinstance(kind, str) or kind not in _SCOPES:  # (a list "type" is unhashable)
        raise bad_request("can't parse BotCommandScope JSON object")
    normalised: dict[str, Any] = {"type": scope["type"]}
    if scope["type"] in {"chat", "chat_administrators", "chat_member"}:
        normalised["chat_id"] = state.resolve_chat(Params(scope).chat_id()).id
    if scope["type"] == "chat_member":
        user_id = Params(scope).integer("user_id")
        if user_id is None or user_id not in state.users:
            raise bad_request("user not found")
        normalised["user_id"] = user_id
    return json.dumps(normalised, sort_keys=True)


def _language(params: Params) -> str:
    language = params.string("language_code") or ""
    if language and not _LANGUAGE.match(language):
        raise bad_request("invalid language code specified")
    return language


# --- the bot ---------------------------------------------------------------------------------


@_method("getMe")
async def get_me(state: SandboxState, params: Params) -> Any:
    me = state.bot.to_api()
    me.update(
        {
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
    )
    return me


@_method("setMyCommands")
async def set_my_commands(state: SandboxState, params: Params) -> Any:
    commands = params.json_value("commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("too many commands specified")
    checked: list[dict[str, str]] = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand JSON object")
        name, description = command.get("command"), command.get("description")
        if not isinstance(name, str) or not _COMMAND.match(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        checked.append({"command": name, "description": description})
    key = (_scope_key(state, params), _language(params))
    if checked:
        state.commands[key] = checked
    else:
        state.commands.pop(key, None)
    return True


@_method("getMyCommands")
async def get_my_commands(state: SandboxState, params: Params) -> Any:
    return state.commands.get((_scope_key(state, params), _language(params)), [])


@_method("deleteMyCommands")
async def delete_my_commands(state: SandboxState, params: Params) -> Any:
    state.commands.pop((_scope_key(state, params), _language(params)), None)
    return True


# --- updates ---------------------------------------------------------------------------------

_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
MAX_POLL_TIMEOUT = 50.0


def _allowed_updates(params: Params) -> list[str] | None:
    value = params.json_value("allowed_updates")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request("can't parse allowed updates JSON object")
    return list(value)


@_method("getUpdates")
async def get_updates(state: SandboxState, params: Params) -> Any:
    if state.webhook is not None:
        raise ApiError(409, _WEBHOOK_ACTIVE)
    offset = params.integer("offset", default=0) or 0
    limit = min(max(params.integer("limit", default=100) or 100, 1), 100)
    timeout = min(max(params.number("timeout", default=0.0) or 0.0, 0.0), MAX_POLL_TIMEOUT)
    allowed = _allowed_updates(params)
    if allowed is not None:
        state.allowed_updates = allowed
    state.poll_generation += 1
    generation = state.poll_generation
    state.notify()  # an earlier, still waiting getUpdates is now terminated
    state.drop_confirmed(offset)
    deadline = time.monotonic() + timeout
    while True:
        if state.poll_generation != generation:
            raise ApiError(409, _TERMINATED)
        if state.webhook is not None:
            raise ApiError(409, _WEBHOOK_ACTIVE)
        ready = [
            update.to_api()
            for update in state.updates
            if state.is_allowed(update.kind, state.allowed_updates)
        ][:limit]
        remaining = deadline - time.monotonic()
        if ready or remaining <= 0 or state.closing:
            return ready
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(state.changed.wait(), remaining)


@_method("setWebhook")
async def set_webhook(state: SandboxState, params: Params) -> Any:
    url = (params.string("url") or "").strip()
    if not url:
        return await delete_webhook(state, params)
    if not url.startswith(("https://", "http://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.string("secret_token") or None
    if secret is not None and not _SECRET_TOKEN.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.integer("max_connections")
    if max_connections is None:
        max_connections = 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    allowed = _allowed_updates(params)
    if params.flag("drop_pending_updates"):
        state.updates.clear()
    state.webhook = Webhook(
        url=url,
        secret_token=secret,
        max_connections=max_connections,
        allowed_updates=allowed,
        ip_address=params.string("ip_address") or None,
    )
    start_webhook_sender(state, state.webhook)
    state.notify()  # a waiting getUpdates now answers 409
    return Answer(True, "Webhook was set")


@_method("deleteWebhook")
async def delete_webhook(state: SandboxState, params: Params) -> Any:
    had_webhook = state.webhook is not None
    state.webhook = None
    state.cancel_webhook_sender()
    if params.flag("drop_pending_updates"):
        state.updates.clear()
    state.notify()
    return Answer(True, "Webhook was deleted" if had_webhook else "Webhook is already deleted")


@_method("getWebhookInfo")
async def get_webhook_info(state: SandboxState, params: Params) -> Any:
    return state.webhook_info()


# --- messages --------------------------------------------------------------------------------


@_method("sendMessage")
async def send_message(state: SandboxState, params: Params) -> Any:
    chat = state.chat_for_bot(params.chat_id())
    text, parse_mode, entities = _checked_text(params)
    reply_to = _reply_target(state, chat, params)
    markup = parse_reply_markup(params.raw("reply_markup"))
    link_preview = _link_preview_options(params)
    state.check_flood(chat)
    chat.action = None  # a message ends "typing…", as in Telegram clients
    message = state.append_message(
        chat,
        state.bot,
        text=text,
        entities=entities,
        parse_mode=parse_mode,
        reply_to=reply_to,
        reply_markup=markup,
        disable_notification=params.flag("disable_notification"),
        protect_content=params.flag("protect_content"),
        link_preview_options=link_preview,
    )
    return message.to_api()


@_method("editMessageText")
async def edit_message_text(state: SandboxState, params: Params) -> Any:
    message = _editable(state, params)
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    text, parse_mode, entities = _checked_text(params)
    markup = _inline_only(parse_reply_markup(params.raw("reply_markup")))
    link_preview = _link_preview_options(params)
    if (text, parse_mode, entities, markup) == (
        message.text,
        message.parse_mode,
        message.entities,
        _inline_markup(message),
    ):
        raise bad_request(_NOT_MODIFIED)
    _record_edit(state, message)
    message.text, message.parse_mode, message.entities = text, parse_mode, entities
    if markup is not None or _inline_markup(message) is not None:
        message.reply_markup = markup  # no reply_markup removes the inline keyboard
    if link_preview is not None:
        message.link_preview_options = link_preview
    return message.to_api()


@_method("editMessageReplyMarkup")
async def edit_message_reply_markup(state: SandboxState, params: Params) -> Any:
    message = _editable(state, params)
    markup = _inline_only(parse_reply_markup(params.raw("reply_markup")))
    if markup == _inline_markup(message):
        raise bad_request(_NOT_MODIFIED)
    _record_edit(state, message)
    message.reply_markup = markup
    return message.to_api()


@_method("deleteMessage")
async def delete_message(state: SandboxState, params: Params) -> Any:
    chat = state.chat_for_bot(params.chat_id())
    message = chat.message(_message_id(params))
    if message is None:
        raise bad_request("message to delete not found")
    may_delete_others = chat.is_private or chat.bot_status in {ADMINISTRATOR, CREATOR}
    if not message.from_bot and not may_delete_others:
        raise bad_request("message can't be deleted for everyone")
    message.deleted = True
    state.notify()
    return True


@_method("answerCallbackQuery")
async def answer_callback_query(state: SandboxState, params: Params) -> Any:
    query = state.callbacks.get(params.string("callback_query_id") or "")
    if query is None or query.answer is not None:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.string("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answer = {
        "text": text,
        "show_alert": params.flag("show_alert"),
        "url": params.string("url") or None,
        "cache_time": params.integer("cache_time", default=0),
        "date": int(time.time()),
    }
    state.notify()
    return True


@_method("sendChatAction")
async def send_chat_action(state: SandboxState, params: Params) -> Any:
    chat = state.chat_for_bot(params.chat_id())
    action = params.string("action")
    if action not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.action = action
    chat.action_until = time.time() + 5.0
    state.notify()
    return True


# --- files -----------------------------------------------------------------------------------


@_method("getFile")
async def get_file(state: SandboxState, params: Params) -> Any:
    stored = state.files.get(params.string("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    return stored.to_api()


# --- chats -----------------------------------------------------------------------------------


@_method("getChat")
async def get_chat(state: SandboxState, params: Params) -> Any:
    return state.chat_for_bot(params.chat_id()).to_full_info()


@_method("getChatMember")
async def get_chat_member(state: SandboxState, params: Params) -> Any:
    chat = state.chat_for_bot(params.chat_id())
    user_id = params.integer("user_id")
    if user_id is None:
        raise bad_request("user_id is empty")
    user = state.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    return _member(state, chat, user)


@_method("getChatAdministrators")
async def get_chat_administrators(state: SandboxState, params: Params) -> Any:
    chat = state.chat_for_bot(params.chat_id())
    if chat.is_private:
        raise bad_request("there are no administrators in the private chat")
    users = [state.users[uid] for uid in chat.members if uid in state.users]
    if chat.bot_status in {ADMINISTRATOR, CREATOR}:
        users.append(state.bot)
    admins = [
        user for user in users if state.member_status(chat, user) in {CREATOR, ADMINISTRATOR}
    ]
    return [_member(state, chat, user) for user in admins]


@_method("leaveChat")
async def leave_chat(state: SandboxState, params: Params) -> Any:
    chat = state.chat_for_bot(params.chat_id())
    if chat.is_private:
        raise bad_request("chat member status can't be changed in private chats")
    chat.bot_status = LEFT
    state.notify()
    return True
