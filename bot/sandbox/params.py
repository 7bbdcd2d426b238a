"""Bot API parameters from any of the four ways Telegram accepts them, with typed access.

The Bot API takes parameters from the query string, a JSON body, a form-encoded body or a
multipart body. In the last three forms every value is a string and objects arrive as JSON text
(python-telegram-bot sends ``reply_markup='{"inline_keyboard": ...}'`` and ``chat_id='42'``),
while a JSON body carries real types. :class:`Params` hides the difference: each getter accepts
both and refuses a wrong value with a 400.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from bot.sandbox.errors import ApiError, bad_request

_INTEGER = re.compile(r"^[+-]?\d+$")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
NOT_UTF8 = "strings must be encoded in UTF-8"


def has_lone_surrogate(value: Any) -> bool:
    """True when a string anywhere in ``value`` holds a lone surrogate (``"\\ud800"`` in JSON).

    JSON can spell code points that are not Unicode text; Telegram refuses them, and the
    sandbox must too, or the stored message could never be encoded in an answer again.
    """
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(item) for item in value)
    return False


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


class Params:
    """Request parameters by name, read with a type; unknown names are ignored like Telegram."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __contains__(self, name: str) -> bool:
        return self.present(name)

    def present(self, name: str) -> bool:
        """Given and not empty (Telegram treats an empty string like an absent parameter)."""
        value = self._values.get(name)
        return value is not None and value != ""

    def raw(self, name: str) -> Any:
        return self._values.get(name)

    def string(self, name: str, *, default: str | None = None) -> str | None:
        value = self._values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, str):
            return value
        raise bad_request(f'field "{name}" must be of type String')

    def integer(self, name: str, *, default: int | None = None) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Integer')
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            return int(value.strip())
        raise bad_request(f'field "{name}" must be of type Integer')

    def number(self, name: str, *, default: float | None = None) -> float | None:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Float')
        try:
            number = float(value if isinstance(value, (int, float)) else str(value))
        except (ValueError, OverflowError):
            raise bad_request(f'field "{name}" must be of type Float') from None
        if not math.isfinite(number):
            raise bad_request(f'field "{name}" must be a finite number')
        return number

    def flag(self, name: str, *, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def json_value(self, name: str) -> Any:
        """An object or array parameter: as given in a JSON body, or parsed from JSON text."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
            if has_lone_surrogate(value):
                raise bad_request(NOT_UTF8)
        return value

    def chat_id(self, name: str = "chat_id") -> int | str:
        """A chat: an integer id (as number or text) or ``@username``."""
        value = self._values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, bool):
            raise bad_request("chat not found")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            text = value.strip()
            if _INTEGER.match(text):
                return int(text)
            if text.startswith("@"):
                return text
        raise bad_request("chat not found")


async def read_params(request: Request) -> Params:
    """Merge the query string and the body (the body wins), whatever its encoding."""
    values: dict[str, Any] = dict(request.query_params)
    if request.method in {"GET", "HEAD"}:
        return Params(values)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if body.strip():
            try:
                parsed = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON request body") from None
            if not isinstance(parsed, dict):
                raise bad_request("JSON request body must be an object")
            if has_lone_surrogate(parsed):
                raise bad_request(NOT_UTF8)
            values.update(parsed)
    elif content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        try:
            form = await request.form()
        except Exception as exc:  # malformed multipart: python-multipart's own errors
            raise ApiError(400, f"Bad Request: can't parse request body: {exc}") from exc
        for key, item in form.multi_items():
            if isinstance(item, UploadFile):
                values[key] = UploadedFile(item.filename, item.content_type, await item.read())
            else:
                values[key] = item
    return Params(values)
