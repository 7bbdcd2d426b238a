"""The sandbox's records (users, chats, messages, callback queries, files, updates) and their JSON.

Each record renders itself twice: ``to_api()`` in the exact shape of the Bot API, so that
python-telegram-bot's ``de_json`` builds the real objects from it, and ``to_control()`` for the
tests and the sandbox web page, which also need what a bot never sees (who sent it, earlier
versions of an edited message, reply keyboards, whether it was deleted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRIVATE = "private"
GROUP = "group"
SUPERGROUP = "supergroup"
CHAT_TYPES = (PRIVATE, GROUP, SUPERGROUP)

# Chat member statuses, as the Bot API names them.
CREATOR = "creator"
ADMINISTRATOR = "administrator"
MEMBER = "member"
LEFT = "left"

# Update kinds a sandbox produces, and those delivered when allowed_updates is empty.
UPDATE_KINDS = ("message", "edited_message", "callback_query")
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@dataclass
class User:
    """A Telegram user (a resident, a grid leader, or the bot itself)."""

    id: int
    first_name: str
    is_bot: bool = False
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def to_api(self) -> dict[str, Any]:
        return _compact(
            {
                "id": self.id,
                "is_bot": self.is_bot,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "username": self.username,
                "language_code": self.language_code,
            }
        )


@dataclass
class Chat:
    """A private chat with one user, or a group/supergroup with a title and members."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    user: User | None = None  # the other side of a private chat
    members: dict[int, str] = field(default_factory=dict)  # user id -> status
    bot_status: str = MEMBER
    messages: list[Message] = field(default_factory=list)  # message_id == index + 1
    action: str | None = None  # the last sendChatAction, shown until action_until
    action_until: float = 0.0

    @property
    def is_private(self) -> bool:
        return self.type == PRIVATE

    @property
    def bot_is_member(self) -> bool:
        return self.bot_status != LEFT

    def message(self, message_id: int) -> Message | None:
        """The message with this id, unless it does not exist or was deleted."""
        if 1 <= message_id <= len(self.messages):
            found = self.messages[message_id - 1]
            return None if found.deleted else found
        return None

    def to_api(self) -> dict[str, Any]:
        if self.is_private and self.user is not None:
            return _compact(
                {
                    "id": self.id,
                    "type": PRIVATE,
                    "first_name": self.user.first_name,
                    "last_name": self.user.last_name,
                    "username": self.user.username,
                }
            )
        return _compact(
            {"id": self.id, "type": self.type, "title": self.title, "username": self.username}
        )

    def to_full_info(self) -> dict[str, Any]:
        """``ChatFullInfo`` for getChat (PTB requires the colour, reactions and gift fields)."""
        info = self.to_api()
        info.update(
            {
                "accent_color_id": abs(self.id) % 7,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return info

    def to_control(self) -> dict[str, Any]:
        visible = [message for message in self.messages if not message.deleted]
        summary = self.to_api()
        summary.update(
            {
                "message_count": len(visible),
                "last_message_id": self.messages[-1].message_id if self.messages else 0,
                "bot_status": self.bot_status,
                "members": dict(
                    sorted((str(uid), status) for uid, status in self.members.items())
                ),
                "action": self.action,
                "action_until": self.action_until if self.action else None,
            }
        )
        return summary


@dataclass
class Message:
    """One message in a chat, in either direction, with its current content."""

    message_id: int
    chat: Chat
    sender: User
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)  # "photo" / "sticker" / ... -> object
    file_id: str | None = None  # the file behind the media (largest photo size)
    reply_to: Message | None = None
    forward_origin: dict[str, Any] | None = None
    reply_markup: dict[str, Any] | None = None
    parse_mode: str | None = None
    disable_notification: bool = False
    protect_content: bool = False
    link_preview_options: dict[str, Any] | None = None
    edit_date: int | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)  # earlier versions, oldest first
    deleted: bool = False

    @property
    def from_bot(self) -> bool:
        return self.sender.is_bot

    def to_api(self, *, nested: bool = False) -> dict[str, Any]:
        """The Bot API ``Message``; a replied-to message is included one level deep."""
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender.to_api(),
            "chat": self.chat.to_api(),
            "date": self.date,
        }
        if self.forward_origin is not None:
            out["forward_origin"] = self.forward_origin
        if self.reply_to is not None and not nested and not self.reply_to.deleted:
            out["reply_to_message"] = self.reply_to.to_api(nested=True)
        if self.edit_date is not None:
            out["edit_date"] = self.edit_date
        if self.protect_content:
            out["has_protected_content"] = True
        if self.text is not None:
            out["text"] = self.text
            if self.entities:
                out["entities"] = self.entities
        if self.link_preview_options is not None:
            out["link_preview_options"] = self.link_preview_options
        out.update(self.media)
        if self.caption is not None:
            out["caption"] = self.caption
            if self.caption_entities:
                out["caption_entities"] = self.caption_entities
        # Telegram returns reply_markup only for inline keyboards.
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            out["reply_markup"] = self.reply_markup
        return out

    def to_control(self) -> dict[str, Any]:
        out = self.to_api(nested=True)
        out.update(
            {
                "from_bot": self.from_bot,
                "reply_to_message_id": self.reply_to.message_id if self.reply_to else None,
                "reply_markup": self.reply_markup,
                "parse_mode": self.parse_mode,
                "disable_notification": self.disable_notification,
                "edits": self.edits,
                "deleted": self.deleted,
                "file_url": f"/sandbox/files/{self.file_id}" if self.file_id else None,
            }
        )
        return out


@dataclass
class CallbackQuery:
    """A press of an inline button, waiting for (or given) answerCallbackQuery."""

    id: str
    sender: User
    message: Message
    data: str
    chat_instance: str
    answer: dict[str, Any] | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender.to_api(),
            "message": self.message.to_api(),
            "chat_instance": self.chat_instance,
            "data": self.data,
        }

    def to_control(self) -> dict[str, Any]:
        out = self.to_api()
        out.update(
            {
                "chat_id": self.message.chat.id,
                "message_id": self.message.message_id,
                "answered": self.answer is not None,
                "answer": self.answer,
            }
        )
        return out


@dataclass
class StoredFile:
    """A file a user sent, kept in memory and served under its ``file_path``."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str

    def to_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class Update:
    """One entry of the update queue: its kind and the object rendered when it happened."""

    update_id: int
    kind: str
    payload: dict[str, Any]

    def to_api(self) -> dict[str, Any]:
        return {"update_id": self.update_id, self.kind: self.payload}


@dataclass
class Webhook:
    """The webhook set by setWebhook, and how its deliveries went."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class Fault:
    """An injected failure: the next ``times`` calls of ``method`` ("*": any) fail or stall."""

    method: str
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    description: str | None = None
    times: int | None = 1  # None: until DELETE /sandbox/faults

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "description": self.description,
            "times": self.times,
        }


@dataclass
class RateLimits:
    """Telegram's flood limits for sending; off unless a test or ``--rate-limits`` wants them."""

    enabled: bool = False
    per_second: int = 30  # messages a second, all chats together
    per_group_per_minute: int = 20  # messages a minute into one group

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "per_second": self.per_second,
            "per_group_per_minute": self.per_group_per_minute,
        }
