"""The bot's python-telegram-bot persistence: a JSON file, so that a set-up in progress survives a
restart.

What is kept is only what a handler needs after a restart: the states of the persistent
conversations (a grid leader's ``/newcampaign``) and the ``user_data`` keys given a codec (the
leader's draft). ``bot_data``, ``chat_data`` and callback data are not stored, nor is any other
``user_data``: a resident's chat leaves nothing in the file.

Why a file beside the store and not a table in it: the store's schema is shared by the whole
product and a handful of half-answered questions is not its data; a draft holds nothing that is
not asked again in a minute when lost. Why JSON and not pickle: loading a pickle runs whatever it
names, and it breaks when a class is renamed; JSON is read as data, checked field by field (a
codec per key), and a person can read it.

Safety: every save writes a temporary file in the same directory, syncs it and renames it over
the old one (then syncs the directory), so a crash leaves the old file or the new one, never half
of one. A file that cannot be read or understood is reported (a warning), set aside as
``<name>.corrupt-<time>`` for a person to look at, and the bot starts with nothing saved; a
single entry that cannot be decoded is dropped with a warning and the rest is kept. A save that
fails is logged and tried again on the next round.

python-telegram-bot hands over what changed every ``UPDATE_INTERVAL`` seconds and when the
application shuts down; the file is written only when something it holds has changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from telegram.ext import BasePersistence, PersistenceInput

from bot.settings import Settings
from bot.store.db import resolve_url
from bot.telegram.leaders import CONVERSATION, DRAFT_KEY, DraftCodec

logger = logging.getLogger(__name__)

FORMAT = "antifraud-telegram-state"
VERSION = 1
UPDATE_INTERVAL = 5.0  # seconds: what a crash (not a stop) can lose
FILE_SUFFIX = "-telegram.json"

UserData = dict[str, Any]
# As python-telegram-bot types them (in a private module of its own).
ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]
CDCData = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]


class Codec(Protocol):
    """How one ``user_data`` value becomes JSON and back."""

    def encode(self, value: Any) -> Any:
        """JSON-ready data (dicts, lists, strings, numbers, booleans, None)."""

    def decode(self, data: Any) -> Any | None:
        """The value again; None when it is not to be restored; ValueError when unreadable."""


class StateFileError(ValueError):
    """The state file is not one this persistence wrote."""


def state_path(settings: Settings) -> Path:
    """Beside a SQLite store, named after it (the drafts refer to its ids); otherwise in the
    data directory, where the spool is."""
    url = resolve_url(settings.database_url)
    database = url.database or ""
    file_db = database not in ("", ":memory:") and not database.startswith("file:")
    if url.get_backend_name() == "sqlite" and file_db:
        db = Path(database)
        return db.with_name(db.stem + FILE_SUFFIX)
    return settings.spool_dir.parent / ("antifraud" + FILE_SUFFIX)


def _key_of(raw: Any) -> ConversationKey:
    if not isinstance(raw, list) or not raw:
        raise StateFileError(f"conversation key {raw!r} is not a list")
    for part in raw:
        if isinstance(part, bool) or not isinstance(part, int | str):
            raise StateFileError(f"conversation key {raw!r} holds {part!r}")
    return tuple(raw)


class JsonPersistence(BasePersistence[UserData, dict[Any, Any], dict[Any, Any]]):
    """Conversations and the ``user_data`` keys in ``codecs``, in the JSON file ``path``.

    ``needs`` ties a conversation (by name) to the ``user_data`` key that holds its state: a
    saved conversation whose value was not restored (stale, unreadable) is not resumed either.
    Such conversations must be keyed per chat and user (python-telegram-bot's default), the
    user's id last.
    """

    def __init__(
        self,
        path: Path,
        codecs: Mapping[str, Codec],
        needs: Mapping[str, str] | None = None,
        update_interval: float = UPDATE_INTERVAL,
    ) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=update_interval,
        )
        self.path = Path(path)
        self.codecs = dict(codecs)
        self.needs = dict(needs or {})
        self.problem: str | None = None  # why the saved state was not (all) restored
        self._users: dict[int, dict[str, Any]] = {}  # encoded, as in the file
        self._conversations: dict[str, dict[ConversationKey, object]] = {}
        self._restored: dict[int, UserData] | None = None
        self._dirty = False
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ reading

    def _load(self) -> dict[int, UserData]:
        if self._restored is not None:
            return self._restored
        self._restored = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._restored
        except (OSError, UnicodeDecodeError) as exc:
            self._set_aside(f"cannot be read: {exc}")
            return self._restored
        try:
            users, conversations = self._parse(json.loads(text))
        except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            self._set_aside(f"is not a state file this bot wrote: {exc}")
            return self._restored
        self._users = users
        for user_id, encoded in list(users.items()):
            restored = self._decoded(user_id, encoded)
            if restored:
                self._restored[user_id] = restored
        for name, states in conversations.items():
            wanted = self.needs.get(name)
            kept = {
                key: state
                for key, state in states.items()
                if wanted is None or wanted in self._restored.get(_user_of(key), {})
            }
            if len(kept) < len(states):
                logger.info(
                    "%d saved %s conversation(s) not resumed: their drafts are gone",
                    len(states) - len(kept),
                    name,
                )
                self._dirty = True
            self._conversations[name] = kept
        return self._restored

    def _parse(
        self, data: Any
    ) -> tuple[dict[int, dict[str, Any]], dict[str, dict[ConversationKey, object]]]:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StateFileError("no format mark")
        if data.get("version") != VERSION:
            raise StateFileError(f"version {data.get('version')!r}, this bot reads {VERSION}")
        raw_users, raw_conversations = data.get("user_data"), data.get("conversations")
        if not isinstance(raw_users, dict) or not isinstance(raw_conversations, dict):
            raise StateFileError("user_data or conversations missing")
        users: dict[int, dict[str, Any]] = {}
        for raw_id, values in raw_users.items():
            if not isinstance(raw_id, str) or not raw_id.lstrip("-").isdigit():
                raise StateFileError(f"user id {raw_id!r}")
            if not isinstance(values, dict):
                raise StateFileError(f"user_data of {raw_id} is not an object")
            users[int(raw_id)] = values
        conversations: dict[str, dict[ConversationKey, object]] = {}
        for name, entries in raw_conversations.items():
            if not isinstance(entries, list):
                raise StateFileError(f"conversations {name!r} is not a list")
            states: dict[ConversationKey, object] = {}
            for entry in entries:
                if not isinstance(entry, list) or len(entry) != 2:
                    raise StateFileError(f"conversation entry {entry!r}")
                state = entry[1]
                if isinstance(state, bool) or not isinstance(state, int | str):
                    raise StateFileError(f"conversation state {state!r}")
                states[_key_of(entry[0])] = state
            conversations[name] = states
        return users, conversations

    def _decoded(self, user_id: int, encoded: dict[str, Any]) -> UserData:
        restored: UserData = {}
        for key in list(encoded):
            codec = self.codecs.get(key)
            value: Any = None
            if codec is not None:
                try:
                    value = codec.decode(encoded[key])
                except (ValueError, TypeError, KeyError) as exc:
                    self.problem = f"{key} of user {user_id}: {exc}"
                    logger.warning(
                        "saved %s of user %s cannot be restored (%s); dropped", key, user_id, exc
                    )
            if value is None:  # unknown, unreadable or stale: gone from the file too
                del encoded[key]
                self._dirty = True
            else:
                restored[key] = value
        if not encoded:
            self._users.pop(user_id, None)
        return restored

    def _set_aside(self, why: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            self.path.rename(aside)
            kept = f"kept as {aside}"
        except OSError as exc:
            kept = f"and could not be set aside ({exc})"
        self.problem = f"{self.path} {why}"
        logger.warning(
            "the bot's saved conversations %s %s; %s. Starting with none: grid leaders with "
            "a campaign set-up in progress start it again.",
            self.path,
            why,
            kept,
        )

    async def get_user_data(self) -> dict[int, UserData]:
        restored = await asyncio.to_thread(self._load)
        return {user_id: dict(values) for user_id, values in restored.items()}

    async def get_conversations(self, name: str) -> ConversationDict:
        await asyncio.to_thread(self._load)
        return dict(self._conversations.get(name, {}))

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> CDCData | None:
        return None

    # ------------------------------------------------------------------ writing

    async def update_user_data(self, user_id: int, data: UserData) -> None:
        encoded: dict[str, Any] = {}
        for key, codec in self.codecs.items():
            if key not in data:
                continue
            try:
                encoded[key] = codec.encode(data[key])
            except (ValueError, TypeError, AttributeError) as exc:
                logger.error("%s of user %s cannot be saved: %s", key, user_id, exc)
        if encoded == self._users.get(user_id, {}):
            return
        if encoded:
            self._users[user_id] = encoded
        else:
            self._users.pop(user_id, None)
        self._dirty = True
        await self._save()

    async def drop_user_data(self, user_id: int) -> None:
        if self._users.pop(user_id, None) is not None:
            self._dirty = True
            await self._save()

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        states = self._conversations.setdefault(name, {})
        if new_state is None:
            if states.pop(key, None) is None:
                return
        elif isinstance(new_state, bool) or not isinstance(new_state, int | str):
            logger.error("state %r of conversation %s cannot be saved", new_state, name)
            return
        elif states.get(key) == new_state:
            return
        else:
            states[key] = new_state
        self._dirty = True
        await self._save()

    async def flush(self) -> None:
        await self._save()

    async def _save(self) -> None:
        async with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            text = json.dumps(self._snapshot(), ensure_ascii=False, indent=1, sort_keys=True)
            try:
                await asyncio.to_thread(self._write, text)
            except OSError as exc:
                self._dirty = True  # the next round tries again
                logger.error("the bot's conversations not saved to %s: %s", self.path, exc)

    def _snapshot(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "user_data": {str(user_id): values for user_id, values in self._users.items()},
            "conversations": {
                name: [[list(key), state] for key, state in states.items()]
                for name, states in self._conversations.items()
                if states
            },
        }

    def _write(self, text: str) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)  # the rename itself survives a power cut
        finally:
            os.close(descriptor)

    # ------------------------------------------------------------------ not kept

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        return None

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        return None

    async def update_callback_data(self, data: CDCData) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def refresh_user_data(self, user_id: int, user_data: UserData) -> None:
        return None  # this process is the only writer: what it holds is current

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        return None


def _user_of(key: ConversationKey) -> int:
    user = key[-1]
    return user if isinstance(user, int) else 0


def bot_persistence(settings: Settings) -> JsonPersistence:
    """What the bot keeps across a restart: grid leaders' campaign set-ups in progress."""
    return JsonPersistence(
        state_path(settings), codecs={DRAFT_KEY: DraftCodec()}, needs={CONVERSATION: DRAFT_KEY}
    )


__all__ = ["Codec", "JsonPersistence", "StateFileError", "bot_persistence", "state_path"]
