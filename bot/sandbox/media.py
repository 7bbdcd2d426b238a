"""Media a sandbox user sends: base64 decoding, image sizes, and the built-in sticker and voice.

A ``PhotoSize`` needs its width and height, so PNG and JPEG headers are read here (no imaging
library: the sandbox must not pull one in just for two integers). A sticker or voice message
sent with ``"sticker": true`` / ``"voice": true`` gets real, small file contents so that the
bot's download path is exercised the same way as for a photo.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import wave
from dataclasses import dataclass

MAX_PHOTO_BYTES = 10 * 1024 * 1024  # Telegram's limit for photos
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # bots may upload this much; getFile serves 20 MB
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile refuses larger files: "file is too big"
MAX_PHOTO_SIDES = 10_000  # a photo's width + height, as Telegram limits them
MAX_PHOTO_RATIO = 20  # and neither side more than 20 times the other

# A 1x1 lossless WebP, the smallest sticker file there is.
STICKER_WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
STICKER_SIZE = 512


class MediaError(ValueError):
    """Sent media that cannot be used; the message says why."""


@dataclass(frozen=True)
class Image:
    """A decoded photo: bytes, format and size."""

    data: bytes
    extension: str
    mime_type: str
    width: int
    height: int


def decode_base64(value: object, what: str) -> bytes:
    """Decode standard or URL-safe base64, with or without a ``data:...;base64,`` prefix."""
    if not isinstance(value, str) or not value.strip():
        raise MediaError(f"{what} must be a base64 string")
    text = value.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaError(f"{what} is not valid base64") from exc


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise MediaError("photo is a broken PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise MediaError("photo is a broken JPEG")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise MediaError("photo is a broken JPEG (no frame header)")


def read_image(data: bytes) -> Image:
    """Recognise a PNG or JPEG and read its size; anything else is refused.

    The size must be one Telegram takes for a photo: at least 1x1, width + height at most
    10000, and no side more than 20 times the other.
    """
    if not data:
        raise MediaError("photo is empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise MediaError("photo is too big (10 MB at most)")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        width, height = _png_size(data)
        extension, mime_type = "png", "image/png"
    elif data.startswith(b"\xff\xd8"):
        width, height = _jpeg_size(data)
        extension, mime_type = "jpg", "image/jpeg"
    else:
        raise MediaError("photo must be a PNG or JPEG image")
    if width < 1 or height < 1:
        raise MediaError(f"photo has no pixels ({width}x{height})")
    if width + height > MAX_PHOTO_SIDES:
        raise MediaError(f"photo is too large ({width}x{height}; width + height is 10000 at most)")
    if max(width, height) > MAX_PHOTO_RATIO * min(width, height):
        raise MediaError(f"photo is too narrow ({width}x{height}; 20:1 at most)")
    return Image(data, extension, mime_type, width, height)


def silent_voice(seconds: int) -> bytes:
    """``seconds`` of 8 kHz mono silence as a WAV file (the default voice message)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000 * seconds)
    return buffer.getvalue()
