"""Checking ``reply_markup`` as Telegram does: inline keyboards, reply keyboards, removal.

The bot's buttons are its main way to offer the next step ("我已经转账了", "补充举报详情"), and
Telegram refuses a keyboard with an over-long ``callback_data`` or a button with no action.
Refusing the same things here means a bad keyboard fails in the sandbox, not in a live group.
"""

from __future__ import annotations

import json
from typing import Any

from bot.sandbox.errors import ApiError, bad_request
from bot.sandbox.params import NOT_UTF8, has_lone_surrogate

MAX_CALLBACK_DATA_BYTES = 64
_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_URL_SCHEMES = ("http://", "https://", "tg://")


def _cant_parse() -> ApiError:
    return bad_request("can't parse reply keyboard markup JSON object")


def _rows(markup: dict[str, Any], field: str, kind: str) -> list[list[Any]]:
    rows = markup[field]
    if not isinstance(rows, list):
        raise bad_request(f'field "{field}" of the {kind} must be an Array')
    for row in rows:
        if not isinstance(row, list):
            raise bad_request(f'field "{field}" of the {kind} must be an Array of Arrays')
    return rows


def _inline_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("inline keyboard button text is empty")  # also "BUTTON_TEXT_INVALID"
    actions = [name for name in _INLINE_ACTIONS if button.get(name) is not None]
    if not actions:
        raise bad_request("text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise bad_request("can't parse inline keyboard button: only one action field is allowed")
    data = button.get("callback_data")
    if data is not None:
        if not isinstance(data, str):
            raise bad_request('field "callback_data" must be of type String')
        if not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    url = button.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(_URL_SCHEMES)):
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    return {key: value for key, value in button.items() if value is not None}


def _reply_button(button: Any) -> dict[str, Any]:
    if isinstance(button, str):
        button = {"text": button}
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse keyboard button: KeyboardButton must be a String or an Object"
        )
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("keyboard button text is empty")
    return {key: value for key, value in button.items() if value is not None}


def parse_reply_markup(value: Any) -> dict[str, Any] | None:
    """Validate a ``reply_markup`` (object or JSON text) and return it normalised."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _cant_parse() from None
        if has_lone_surrogate(value):
            raise bad_request(NOT_UTF8)
    if not isinstance(value, dict):
        raise _cant_parse()
    if "inline_keyboard" in value:
        rows = _rows(value, "inline_keyboard", "InlineKeyboardMarkup")
        keyboard = [[_inline_button(button) for button in row] for row in rows]
        if sum(len(row) for row in keyboard) > 100:
            raise bad_request("too many buttons in the inline keyboard")  # REPLY_MARKUP_TOO_LONG
        return {"inline_keyboard": keyboard}
    if "keyboard" in value:
        rows = _rows(value, "keyboard", "ReplyKeyboardMarkup")
        normalised = {key: item for key, item in value.items() if item is not None}
        normalised["keyboard"] = [[_reply_button(button) for button in row] for row in rows]
        return normalised
    if value.get("remove_keyboard") is True:
        return {key: item for key, item in value.items() if item is not None}
    if value.get("force_reply") is True:
        return {key: item for key, item in value.items() if item is not None}
    raise _cant_parse()


def callback_data_of(markup: dict[str, Any] | None) -> list[str]:
    """Every ``callback_data`` on an inline keyboard, in order."""
    if not markup or "inline_keyboard" not in markup:
        return []
    return [
        button["callback_data"]
        for row in markup["inline_keyboard"]
        for button in row
        if "callback_data" in button
    ]
