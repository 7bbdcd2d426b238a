"""Message text as Telegram sees it: UTF-16 offsets, detected entities, HTML parse mode.

Telegram measures entity offsets and lengths in UTF-16 code units, so an emoji before a command
moves it by two, not one; a bot that slices ``text[offset:]`` in Python gets this wrong, and the
sandbox must get it right for the tests to catch that. The rules for what counts as a
``/command``, an ``@mention`` or a ``#hashtag`` follow TDLib's matchers (the character before
and after must not be a letter, a digit or ``_``), which is why "问/check" is not a command.

HTML follows TDLib's ``parse_html``: the supported tags, the four named entities plus numeric
ones, and its error messages, so a broken reply is refused here with the words Telegram uses.
"""

from __future__ import annotations

import unicodedata
from typing import Any

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (characters outside the BMP count twice)."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def utf16_offsets(text: str) -> list[int]:
    """``result[i]`` is the UTF-16 offset of ``text[i]``; ``result[len(text)]`` the total."""
    offsets = [0] * (len(text) + 1)
    position = 0
    for index, char in enumerate(text):
        offsets[index] = position
        position += 2 if ord(char) > 0xFFFF else 1
    offsets[len(text)] = position
    return offsets


def _is_word_character(char: str) -> bool:
    """TDLib's ``is_word_character``: letters (CJK included), numbers and ``_``."""
    return char == "_" or unicodedata.category(char)[0] in "LN"


def _is_username_character(char: str) -> bool:
    return char == "_" or ("0" <= char <= "9") or ("a" <= char.lower() <= "z")


def _scan_username(text: str, start: int) -> int:
    end = start
    while end < len(text) and _is_username_character(text[end]):
        end += 1
    return end


def _find_mentions(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        if char != "@" or (index > 0 and _is_word_character(text[index - 1])):
            continue
        end = _scan_username(text, index + 1)
        size = end - index - 1
        if not 2 <= size <= 32:
            continue
        if end < len(text) and _is_word_character(text[end]):
            continue
        if size < 4 and text[index + 1 : end].lower() not in {"gif", "vid", "pic"}:
            continue
        spans.append((index, end))
    return spans


def _find_bot_commands(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        if char != "/":
            continue
        if index > 0 and (_is_word_character(text[index - 1]) or text[index - 1] in "/<>"):
            continue
        end = _scan_username(text, index + 1)
        if not 1 <= end - index - 1 <= 64:
            continue
        if end < len(text) and text[end] == "@":
            bot_end = _scan_username(text, end + 1)
            if not 3 <= bot_end - end - 1 <= 32:
                continue
            end = bot_end
        if end < len(text) and (_is_word_character(text[end]) or text[end] in "/<>"):
            continue
        spans.append((index, end))
    return spans


def _is_hashtag_letter(char: str) -> bool:
    if char in "_\u200c\u00b7" or "\u0d80" <= char <= "\u0dff":
        return True
    category = unicodedata.category(char)
    return category[0] == "L" or category == "Nd"


def _find_hashtags(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        if char != "#" or (index > 0 and _is_hashtag_letter(text[index - 1])):
            continue
        end = index + 1
        while end < len(text) and _is_hashtag_letter(text[end]):
            end += 1
        body = text[index + 1 : min(end, index + 257)]
        if not body or (end < len(text) and text[end] == "#"):
            continue
        if not any(unicodedata.category(c)[0] == "L" for c in body):
            continue
        spans.append((index, index + 1 + len(body)))
    return spans


def find_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram adds to a message a user typed: commands, mentions, hashtags.

    Offsets and lengths are in UTF-16 code units, sorted by offset as Telegram sends them.
    """
    offsets = utf16_offsets(text)
    found: list[tuple[int, int, str]] = []
    for kind, spans in (
        ("bot_command", _find_bot_commands(text)),
        ("mention", _find_mentions(text)),
        ("hashtag", _find_hashtags(text)),
    ):
        found.extend((start, end, kind) for start, end in spans)
    found.sort()
    entities: list[dict[str, Any]] = []
    taken_until = -1
    for start, end, kind in found:
        if start < taken_until:  # overlapping matches: the first one wins, as in TDLib
            continue
        taken_until = end
        entities.append(
            {"type": kind, "offset": offsets[start], "length": offsets[end] - offsets[start]}
        )
    return entities


class HtmlError(ValueError):
    """The HTML does not parse; the message is TDLib's (without "can't parse entities: ")."""


_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
        "tg-emoji", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip
_NAMED_ENTITIES = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}
_SPACES = b" \t\r\n\v\0"


def _is_ascii_alnum(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _decode_entity(data: bytes, pos: int) -> tuple[str, int] | None:
    """Decode ``&...;`` at ``pos``: (character, position after it), or None to keep ``&``."""
    end = pos + 1
    if end < len(data) and data[end : end + 1] == b"#":
        end += 1
        hexadecimal = end < len(data) and data[end : end + 1] in (b"x", b"X")
        if hexadecimal:
            end += 1
        digits = b"0123456789abcdefABCDEF" if hexadecimal else b"0123456789"
        start = end
        while end < len(data) and data[end] in digits:
            end += 1
        if end == start or end - start >= 10:
            return None
        code = int(data[start:end], 16 if hexadecimal else 10)
        if code == 0 or code > 0x10FFFF:
            return None
        char = chr(code)
    else:
        while end < len(data) and _is_ascii_alnum(data[end]) and not 0x30 <= data[end] <= 0x39:
            end += 1
        named = _NAMED_ENTITIES.get(data[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < len(data) and data[end : end + 1] == b";":
        end += 1
    return char, end


def _skip_spaces(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in _SPACES:
        pos += 1
    return pos


def _read_start_tag(data: bytes, begin: int) -> tuple[str, str, int]:
    """Parse ``<tag attr=value ...>`` at ``begin``: (tag, its argument, position after ``>``)."""
    pos = begin + 1
    while pos < len(data) and data[pos] not in _SPACES and data[pos : pos + 1] != b">":
        pos += 1
    if pos >= len(data):
        raise HtmlError(f"Unclosed start tag at byte offset {begin}")
    tag = data[begin + 1 : pos].decode("utf-8", "replace").lower()
    if tag not in _HTML_TAGS:
        raise HtmlError(f'Unsupported start tag "{tag}" at byte offset {begin}')
    argument = ""
    while pos < len(data) and data[pos : pos + 1] != b">":
        pos = _skip_spaces(data, pos)
        if pos < len(data) and data[pos : pos + 1] == b">":
            break
        name_start = pos
        while pos < len(data) and data[pos] not in _SPACES and data[pos : pos + 1] != b"=":
            pos += 1
        name = data[name_start:pos].decode("utf-8", "replace").lower()
        if not name:
            raise HtmlError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        pos = _skip_spaces(data, pos)
        if pos >= len(data) or data[pos : pos + 1] != b"=":
            raise HtmlError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{tag}" at byte offset {begin}'
            )
        pos = _skip_spaces(data, pos + 1)
        if pos >= len(data):
            raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        value, pos = _read_attribute_value(data, pos)
        if pos >= len(data):
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if (tag, name) in {("a", "href"), ("tg-emoji", "emoji-id"), ("blockquote", "expandable")}:
            argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            argument = value.removeprefix("language-")
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value.removeprefix("tg-")
    if tag == "span" and argument != "spoiler":
        raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    return tag, argument, pos + 1


def _read_attribute_value(data: bytes, pos: int) -> tuple[str, int]:
    quote = data[pos : pos + 1]
    if quote not in (b"'", b'"'):
        start = pos
        while pos < len(data) and (_is_ascii_alnum(data[pos]) or data[pos : pos + 1] in b".-"):
            pos += 1
        if pos < len(data) and data[pos] not in _SPACES and data[pos : pos + 1] != b">":
            raise HtmlError(f"Unexpected end of name token at byte offset {start}")
        return data[start:pos].decode("utf-8", "replace").lower(), pos
    pos += 1
    value: list[str] = []
    chunk_start = pos
    while pos < len(data) and data[pos : pos + 1] != quote:
        if data[pos : pos + 1] == b"&":
            decoded = _decode_entity(data, pos)
            if decoded is not None:
                value.append(data[chunk_start:pos].decode("utf-8", "replace"))
                value.append(decoded[0])
                pos = chunk_start = decoded[1]
                continue
        pos += 1
    value.append(data[chunk_start:pos].decode("utf-8", "replace"))
    if pos < len(data):
        pos += 1
    return "".join(value), pos


def parse_html(text: str) -> str:
    """Check ``text`` as Telegram's HTML parse mode does and return its visible text.

    Raises :class:`HtmlError` with TDLib's description (byte offsets in UTF-8) when Telegram
    would answer "can't parse entities".
    """
    data = text.encode("utf-8")
    visible: list[str] = []
    open_tags: list[tuple[str, str]] = []
    pos = 0
    chunk_start = 0
    while pos < len(data):
        byte = data[pos : pos + 1]
        if byte == b"&":
            decoded = _decode_entity(data, pos)
            if decoded is not None:
                visible.append(data[chunk_start:pos].decode("utf-8"))
                visible.append(decoded[0])
                pos = chunk_start = decoded[1]
                continue
        if byte != b"<":
            pos += 1
            continue
        visible.append(data[chunk_start:pos].decode("utf-8"))
        begin = pos
        if data[pos + 1 : pos + 2] != b"/":
            tag, argument, pos = _read_start_tag(data, begin)
            open_tags.append((tag, argument))
        else:
            if not open_tags:
                raise HtmlError(f"Unexpected end tag at byte offset {begin}")
            pos += 2
            while pos < len(data) and data[pos] not in _SPACES and data[pos : pos + 1] != b">":
                pos += 1
            end_tag = data[begin + 2 : pos].decode("utf-8", "replace").lower()
            pos = _skip_spaces(data, pos)
            if pos >= len(data) or data[pos : pos + 1] != b">":
                raise HtmlError(f"Unclosed end tag at byte offset {begin}")
            expected = open_tags[-1][0]
            if end_tag and end_tag != expected:
                raise HtmlError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{expected}>", '
                    f'found "</{end_tag}>"'
                )
            tag, argument = open_tags.pop()
            if tag == "tg-emoji" and not argument.isdigit():
                raise HtmlError("Invalid custom emoji identifier specified")
            pos += 1
        chunk_start = pos
    visible.append(data[chunk_start:].decode("utf-8"))
    if open_tags:
        raise HtmlError(f"Can't find end tag corresponding to start tag {open_tags[-1][0]}")
    result = "".join(visible)
    if any("\ud800" <= char <= "\udfff" for char in result):
        raise HtmlError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        )
    return result
