"""Everything the sandbox Bot API server knows, in memory, guarded by one asyncio lock.

One bot, its users and chats, every message in both directions, the update queue, callback
queries, files, commands, the webhook, injected faults and flood limits. Nothing is global: a
test or the main app makes a :class:`SandboxState` and hands it to ``create_app``, so two
sandboxes can live in one process.

Concurrency: all reads and writes happen on the event loop that serves the app, inside
``async with state.changed`` (an :class:`asyncio.Condition` over the single lock). Waiting for
news (long polling, the webhook sender, the control API's ``wait``) is ``state.changed.wait()``,
woken by :meth:`SandboxState.notify` after every change. Another thread must not touch the state
directly: it goes through the HTTP API (as the tests do) or ``asyncio.run_coroutine_threadsafe``.
The helpers below that take no lock expect the caller to hold it.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import secrets
import time
from typing import Any

from bot.sandbox.errors import bad_request, forbidden, too_many_requests
from bot.sandbox.models import (
    ADMINISTRATOR,
    CREATOR,
    DEFAULT_EXCLUDED_UPDATES,
    LEFT,
    MEMBER,
    PRIVATE,
    CallbackQuery,
    Chat,
    Fault,
    Message,
    RateLimits,
    StoredFile,
    Update,
    User,
    Webhook,
)

BOT_USERNAME = "antifraud_sandbox_bot"
BOT_FIRST_NAME = "反诈助手"
DEFAULT_BOT_ID = 7_000_000_001


def bot_id_from_token(token: str) -> int:
    """A real token starts with the bot's id (``123456:ABC...``); otherwise a fixed id."""
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() and 0 < int(head) < 2**52 else DEFAULT_BOT_ID


class SandboxState:
    """The sandbox's memory. ``token`` is the only token the Bot API routes accept."""

    def __init__(
        self,
        token: str,
        *,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = BOT_FIRST_NAME,
        rate_limits: RateLimits | None = None,
        webhook_retry_initial: float = 1.0,
        webhook_retry_max: float = 60.0,
        webhook_timeout: float = 10.0,
    ) -> None:
        if not token or token != token.strip():
            raise ValueError("the sandbox needs a token without surrounding spaces")
        self.token = token
        self.bot = User(
            bot_id_from_token(token), bot_first_name, is_bot=True, username=bot_username
        )
        self.rate_limits = rate_limits or RateLimits()
        self.webhook_retry_initial = webhook_retry_initial
        self.webhook_retry_max = webhook_retry_max
        self.webhook_timeout = webhook_timeout
        self.changed = asyncio.Condition()
        self.closing = False  # set by close(): every long wait returns at once
        self._update_ids = itertools.count(1)  # never reset: a poller's offset stays valid
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self.webhook_task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._clear()

    def _clear(self) -> None:
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.chats: dict[int, Chat] = {}
        self.updates: collections.deque[Update] = collections.deque()
        self.callbacks: dict[str, CallbackQuery] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.webhook: Webhook | None = None
        self.faults: list[Fault] = []
        self.allowed_updates: list[str] | None = None
        self.poll_generation = 0
        self._sent_all: collections.deque[float] = collections.deque()
        self._sent_group: dict[int, collections.deque[float]] = {}
        self.flood_refusals = 0  # 429s answered for breaking the flood limits, since the reset

    # --- lifecycle -------------------------------------------------------------------------

    def cancel_webhook_sender(self) -> None:
        """Stop delivering to the webhook; safe with the lock held (nothing is awaited)."""
        task, self.webhook_task = self.webhook_task, None
        if task is not None and not task.done():
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def stop_webhook_sender(self) -> None:
        """Stop delivering and wait until the sender has ended (call without the lock)."""
        self.cancel_webhook_sender()
        stopping = list(self._stopping)
        if stopping:
            await asyncio.gather(*stopping, return_exceptions=True)

    def webhook_info(self) -> dict[str, Any]:
        """getWebhookInfo's ``WebhookInfo``."""
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        webhook = self.webhook
        if webhook is not None:
            info["url"] = webhook.url
            info["max_connections"] = webhook.max_connections
            optional = {
                "ip_address": webhook.ip_address,
                "allowed_updates": webhook.allowed_updates,
                "last_error_date": webhook.last_error_date,
                "last_error_message": webhook.last_error_message,
            }
            info.update({key: value for key, value in optional.items() if value is not None})
        return info

    async def reset(self) -> None:
        """Forget everything but the bot and the update counter (tests call this between runs)."""
        await self.stop_webhook_sender()
        async with self.changed:
            self._clear()
            self.rate_limits.enabled = False
            self.notify()

    async def aclose(self) -> None:
        """Stop background work; the main app calls this when its server shuts down."""
        await self.stop_webhook_sender()

    async def close(self) -> None:
        """End every long poll and ``wait`` now (the server is stopping), so that the web
        server does not wait for them, nor cancel them (which Python 3.10's ``wait_for`` on a
        condition does not survive cleanly)."""
        async with self.changed:
            self.closing = True
            self.changed.notify_all()
        await self.stop_webhook_sender()

    def notify(self) -> None:
        """Wake every waiter (long polls, the webhook sender, control ``wait``s)."""
        self.changed.notify_all()

    # --- users and chats -------------------------------------------------------------------

    def resolve_chat(self, chat_id: int | str) -> Chat:
        """The chat for a ``chat_id`` parameter, or Telegram's "chat not found"."""
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == name:
                    return chat
            raise bad_request("chat not found")
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def chat_for_bot(self, chat_id: int | str) -> Chat:
        """A chat the bot can act in: it exists and the bot has not left it."""
        chat = self.resolve_chat(chat_id)
        if not chat.bot_is_member:
            kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
            raise forbidden(f"bot is not a member of the {kind}")
        return chat

    def member_status(self, chat: Chat, user: User) -> str:
        if user.id == self.bot.id:
            return chat.bot_status
        if chat.is_private:
            return MEMBER if chat.user is not None and chat.user.id == user.id else LEFT
        return chat.members.get(user.id, LEFT)

    def add_member(self, chat: Chat, user: User) -> None:
        if chat.is_private or chat.members.get(user.id, LEFT) != LEFT:
            return
        has_creator = CREATOR in chat.members.values()
        chat.members[user.id] = MEMBER if has_creator else CREATOR

    def new_chat(self, chat_id: int, chat_type: str, *, title: str | None, user: User | None,
                 username: str | None = None) -> Chat:  # fmt: skip
        chat = Chat(chat_id, chat_type, title=title, username=username, user=user)
        chat.bot_status = MEMBER if chat_type == PRIVATE else ADMINISTRATOR
        self.chats[chat_id] = chat
        return chat

    # --- messages, updates, files --------------------------------------------------------

    def append_message(self, chat: Chat, sender: User, **content: Any) -> Message:
        message = Message(
            message_id=len(chat.messages) + 1,
            chat=chat,
            sender=sender,
            date=int(time.time()),
            **content,
        )
        chat.messages.append(message)
        self.notify()
        return message

    def push_update(self, kind: str, payload: dict[str, Any]) -> Update:
        update = Update(next(self._update_ids), kind, payload)
        self.updates.append(update)
        self.notify()
        return update

    def drop_confirmed(self, offset: int) -> None:
        """getUpdates' ``offset``: forget updates before it (negative: keep the last -offset)."""
        if offset > 0:
            while self.updates and self.updates[0].update_id < offset:
                self.updates.popleft()
        elif offset < 0:
            while len(self.updates) > -offset:
                self.updates.popleft()

    def is_allowed(self, kind: str, allowed: list[str] | None) -> bool:
        if not allowed:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in allowed

    def new_callback_id(self) -> str:
        return str(self.bot.id * 1000 + next(self._callback_ids))

    def chat_instance(self, chat: Chat) -> str:
        """A stable opaque id per chat, as Telegram gives in ``CallbackQuery.chat_instance``."""
        digest = hashlib.sha256(f"{self.bot.id}:{chat.id}".encode()).digest()
        return str(int.from_bytes(digest[:8], "big") - 2**63)

    def store_file(self, data: bytes, folder: str, extension: str, mime_type: str) -> StoredFile:
        number = next(self._file_ids)
        stored = StoredFile(
            file_id=f"SBX{number}_{secrets.token_urlsafe(24)}",
            file_unique_id=f"U{number}{secrets.token_hex(4)}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
            mime_type=mime_type,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # --- faults and flood limits ----------------------------------------------------------

    def take_fault(self, method: str) -> Fault | None:
        """The first injected fault for ``method`` (or "*"), counted down."""
        name = method.lower()
        for fault in self.faults:
            if fault.method in ("*", name):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def check_flood(self, chat: Chat) -> None:
        """Refuse with 429 when sending now would break Telegram's limits; else count it."""
        limits = self.rate_limits
        if not limits.enabled:
            return
        now = time.monotonic()
        while self._sent_all and now - self._sent_all[0] >= 1.0:
            self._sent_all.popleft()
        if len(self._sent_all) >= limits.per_second:
            self.flood_refusals += 1
            raise too_many_requests(max(1, int(1.0 - (now - self._sent_all[0]) + 0.999)))
        group = None
        if not chat.is_private:
            group = self._sent_group.setdefault(chat.id, collections.deque())
            while group and now - group[0] >= 60.0:
                group.popleft()
            if len(group) >= limits.per_group_per_minute:
                self.flood_refusals += 1
                raise too_many_requests(max(1, int(60.0 - (now - group[0]) + 0.999)))
        self._sent_all.append(now)
        if group is not None:
            group.append(now)
