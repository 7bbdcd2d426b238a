"""Reading the Chinese text of a forwarded screenshot, so it can be checked like a typed message.

Residents rarely retype a suspicious SMS or chat: they forward a screenshot of it (SMS apps,
WeChat, QQ, Taobao customer service). ``Reader.read`` turns the image into the text the bot then
checks as if it had been typed, with the lines in reading order and the wrapped lines of one
chat bubble joined back into one sentence (so "下载软件做任" + "务" is found as "做任务").

The images come from strangers, so they are checked with Pillow before the OCR engine sees
them: only common picture formats, at most 10 MB and 40 megapixels (a decompression bomb is
refused from its header, before anything is decoded), the first frame of an animation, any
mode flattened to RGB on white. Large images are scaled down first (OCR time grows with the
pixel count). Every refusal is an ``OcrError`` whose ``reason`` the bot can turn into a reply.

The engine is RapidOCR (PaddleOCR's PP-OCRv4 models on ONNX Runtime, CPU only). Its models ship
inside the ``rapidocr-onnxruntime`` wheel and are loaded from there: nothing is downloaded at run
time. Building it takes about a second, so one ``Reader`` per process (``get_reader``) is shared;
the engine runs one image at a time behind a lock (it keeps per-call state, and on a small
machine two images at once are no faster than one after the other).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

logger = logging.getLogger(__name__)

# A file larger than this is refused unread (phone screenshots are 0.1 to 3 MB).
MAX_BYTES = 10 * 1024 * 1024
# More pixels than this is refused from the header alone: a decompression bomb or a poster.
MAX_PIXELS = 40_000_000
# The long side is scaled down to this before OCR (RapidOCR would otherwise do it itself).
MAX_SIDE = 2000
# Lines the recogniser is less sure of than this are dropped (noise, icons, cut-off text).
MIN_CONFIDENCE = 0.5
# An image whose grey levels span less than this is stretched before OCR.
LOW_CONTRAST = 128
# The formats phones and chat apps send; anything else (EPS, PSD, ICO...) is not opened.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
# The loggers RapidOCR gives their own stderr handlers at DEBUG level.
_ENGINE_LOGGERS = ("RapidOCR", "OrtInferSession")
_ORIENTATION = 0x0112  # the EXIF tag

Reason = Literal["not_an_image", "too_large", "empty", "unreadable"]
Box = tuple[int, int, int, int]


class OcrError(ValueError):
    """A screenshot that gave no text; ``reason`` says why, ``message`` says it to a resident."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "not_an_image": "这个文件不是图片，请发送短信或聊天记录的截图。",
        "too_large": "图片太大了，请发送10MB以内的普通手机截图。",
        "empty": "图片里没有识别到文字。可以把可疑的内容直接打字发给我。",
        "unreadable": "这张图片打不开或看不清，请重新截图后再发一次。",
    }

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason
        self.detail = detail

    @property
    def message(self) -> str:
        """A reply for the resident, in Chinese."""
        return self.MESSAGES[self.reason]


@dataclass(frozen=True)
class OcrLine:
    """One line of text as the engine found it; ``box`` is (left, top, right, bottom) in pixels
    of the image as received."""

    text: str
    confidence: float
    box: Box

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class OcrResult:
    """The text of a screenshot in reading order, with its lines and how long reading took."""

    text: str
    lines: tuple[OcrLine, ...]
    confidence: float
    width: int
    height: int
    seconds: float


# ----------------------------------------------------------------------------- the image


def _open(data: bytes, max_side: int = MAX_SIDE) -> tuple[Image.Image, tuple[int, int]]:
    """The image decoded to RGB, at most ``max_side`` on its long side, and its size as the
    resident sees it (EXIF rotation applied, before scaling); or an ``OcrError``."""
    if not data:
        raise OcrError("not_an_image", "zero bytes")
    if len(data) > MAX_BYTES:
        raise OcrError("too_large", f"{len(data)} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        if _looks_like_an_image(data):  # cut short in transfer, or damaged
            raise OcrError("unreadable", "broken image header") from exc
        raise OcrError("not_an_image") from exc
    except Image.DecompressionBombError as exc:
        raise OcrError("too_large", str(exc)) from exc
    except Exception as exc:  # a known format with a broken header
        raise OcrError("unreadable", f"{type(exc).__name__}: {exc}") from exc
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise OcrError("too_large", f"{width}x{height} pixels")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF and palette-transparency chatter
            if image.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):  # turned a quarter
                width, height = height, width
            image.seek(0)  # the first frame of an animated GIF, APNG or WebP
            if image.format in ("JPEG", "MPO") and max(width, height) > max_side:
                scale = max_side / max(width, height)  # decode at a reduced size: much faster
                image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise OcrError("too_large", str(exc)) from exc
    except Exception as exc:  # truncated or corrupt data, an unsupported mode
        raise OcrError("unreadable", f"{type(exc).__name__}: {exc}") from exc
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return _stretch_contrast(rgb), (width, height)


def _looks_like_an_image(data: bytes) -> bool:
    """Whether the file starts like one of ``FORMATS``."""
    head = data[:16]
    return (
        head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM"))
        or head.startswith((b"II*\x00", b"MM\x00*"))
        or (head.startswith(b"RIFF") and head[8:12] == b"WEBP")
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode as RGB: transparency on white (chat apps export transparent PNGs too)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        span = (high - low) or 1.0
        image = Image.fromarray(((values - low) * (255 / span)).astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _stretch_contrast(image: Image.Image) -> Image.Image:
    """A dim screenshot (dark mode at night brightness, grey on grey) stretched to full range.

    The detector misses text only a few grey levels above its background; screenshots that
    already span black to white are left as they are.
    """
    histogram = image.convert("L").histogram()
    total = sum(histogram)
    tail = total * 0.001
    seen, low = 0, 0
    for level, count in enumerate(histogram):
        seen += count
        if seen > tail:
            low = level
            break
    seen, high = 0, 255
    for level in range(255, -1, -1):
        seen += histogram[level]
        if seen > tail:
            high = level
            break
    if high - low >= LOW_CONTRAST:
        return image
    return ImageOps.autocontrast(image, cutoff=0.1, preserve_tone=True)


# ----------------------------------------------------------------------------- the text


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _join_pieces(left: str, right: str, glue: str) -> str:
    """Join two pieces of one line or one paragraph: Chinese runs on, Latin words get a space."""
    if not left or not right:
        return left + right
    if _is_word_char(left[-1]) and _is_word_char(right[0]):
        return f"{left}{glue}{right}"
    return left + right


@dataclass
class _Row:
    """Lines side by side at the same height (a wide line the detector split, or a status bar)."""

    lines: list[OcrLine]

    @property
    def top(self) -> int:
        return min(line.box[1] for line in self.lines)

    @property
    def bottom(self) -> int:
        return max(line.box[3] for line in self.lines)

    @property
    def left(self) -> int:
        return min(line.box[0] for line in self.lines)

    @property
    def height(self) -> float:
        return sum(line.height for line in self.lines) / len(self.lines)

    def overlaps(self, line: OcrLine) -> bool:
        """Whether ``line`` shares at least half of its height (or the row's) with this row."""
        shared = min(self.bottom, line.box[3]) - max(self.top, line.box[1])
        return shared >= 0.5 * min(self.bottom - self.top, line.height)

    def text(self) -> str:
        parts = sorted(self.lines, key=lambda line: line.box[0])
        out = parts[0].text
        for before, after in itertools.pairwise(parts):
            gap = after.box[0] - before.box[2]
            # Pieces of one line run on; separate items (clock, battery) keep a space.
            out = (
                _join_pieces(out, after.text, " ") if gap < after.height else f"{out} {after.text}"
            )
        return out


def _rows(lines: Sequence[OcrLine]) -> list[_Row]:
    """Group lines into rows, top to bottom, each row left to right."""
    rows: list[_Row] = []
    for line in sorted(lines, key=lambda line: (line.box[1] + line.box[3]) / 2):
        if rows and rows[-1].overlaps(line):
            rows[-1].lines.append(line)
        else:
            rows.append(_Row([line]))
    for row in rows:
        row.lines.sort(key=lambda line: line.box[0])
    return rows


def _same_paragraph(upper: _Row, lower: _Row) -> bool:
    """Whether ``lower`` continues ``upper``: a wrapped line of the same bubble or SMS.

    Wrapped lines have the same size of type, start at the same left edge and sit close
    together, and the upper one is long (it was wrapped because it filled the bubble); separate
    bubbles, timestamps and a title over its subtitle fail at least one of these.
    """
    height = max(upper.height, lower.height)
    long = upper.lines[0].box[2] - upper.lines[0].box[0] >= 6 * upper.height
    same_size = min(upper.height, lower.height) >= 0.75 * height
    aligned = abs(upper.left - lower.left) <= 0.8 * height
    close = lower.top - upper.bottom <= 0.6 * height
    single = len(upper.lines) == len(lower.lines) == 1
    return single and long and same_size and aligned and close


def layout(lines: Sequence[OcrLine]) -> tuple[tuple[OcrLine, ...], str]:
    """The lines in reading order and the text: paragraphs on their own line, wraps joined."""
    rows = _rows(lines)
    ordered = tuple(line for row in rows for line in row.lines)
    paragraphs: list[str] = []
    previous: _Row | None = None
    for row in rows:
        text = row.text()
        if previous is not None and _same_paragraph(previous, row):
            paragraphs[-1] = _join_pieces(paragraphs[-1], text, " ")
        else:
            paragraphs.append(text)
        previous = row
    return ordered, "\n".join(paragraphs)


# ----------------------------------------------------------------------------- the engine


def _quiet_engine_logs() -> None:
    """RapidOCR's loggers print to stderr at DEBUG: route them through ours, warnings only."""
    try:
        from rapidocr_onnxruntime.utils.logger import get_logger
    except ImportError:  # another layout of the package: leave its loggers as they are
        get_logger = logging.getLogger
    for name in _ENGINE_LOGGERS:
        engine_logger = get_logger(name)  # cached: creating it now keeps it from adding more
        for handler in list(engine_logger.handlers):
            engine_logger.removeHandler(handler)
        engine_logger.setLevel(logging.WARNING)
        engine_logger.propagate = True


class Reader:
    """Reads screenshots with one RapidOCR engine; safe to share between threads."""

    def __init__(
        self, *, min_confidence: float = MIN_CONFIDENCE, max_side: int = MAX_SIDE
    ) -> None:
        started = time.perf_counter()
        _quiet_engine_logs()
        import onnxruntime
        from rapidocr_onnxruntime import RapidOCR

        onnxruntime.set_default_logger_severity(3)  # errors only
        self.min_confidence = min_confidence
        self.max_side = max_side
        self._engine: Any = RapidOCR(
            text_score=min_confidence,
            max_side_len=max(max_side, MAX_SIDE) + 64,  # already scaled: no second resize
            print_verbose=False,
        )
        _quiet_engine_logs()
        self._lock = threading.Lock()
        logger.info("OCR engine ready in %.2f s", time.perf_counter() - started)

    def read(self, data: bytes) -> OcrResult:
        """The text of an image file's bytes; ``OcrError`` when there is none to be had."""
        started = time.perf_counter()
        image, (width, height) = _open(bytes(data), self.max_side)
        scale = (width / image.width, height / image.height)
        raw = self._run(image) if min(image.size) >= 8 else None
        lines = [
            line
            for line in (_line(item, scale, (width, height)) for item in raw or ())
            if line.text and line.confidence >= self.min_confidence
        ]
        seconds = time.perf_counter() - started
        if not lines:
            logger.info("OCR: no text in a %dx%d image (%.2f s)", width, height, seconds)
            raise OcrError("empty", f"{width}x{height}")
        ordered, text = layout(lines)
        confidence = sum(line.confidence for line in ordered) / len(ordered)
        logger.info(
            "OCR: %d lines, %d characters from a %dx%d image in %.2f s (confidence %.2f)",
            len(ordered),
            len(text),
            width,
            height,
            seconds,
            confidence,
        )
        return OcrResult(text, ordered, confidence, width, height, seconds)

    async def aread(self, data: bytes) -> OcrResult:
        """``read`` in a worker thread, so the event loop keeps serving other residents."""
        return await asyncio.to_thread(self.read, data)

    def _run(self, image: Image.Image) -> list[Any] | None:
        import numpy as np

        bgr: np.ndarray = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        try:
            with self._lock:
                result, _elapsed = self._engine(bgr)
        except Exception as exc:
            logger.warning("OCR engine failed on a %dx%d image", *image.size, exc_info=True)
            raise OcrError("unreadable", f"{type(exc).__name__}: {exc}") from exc
        return result


def _line(item: Sequence[Any], scale: tuple[float, float], size: tuple[int, int]) -> OcrLine:
    """An engine result (four corners, text, score) with its box in the original's pixels."""
    points, text, score = item[0], item[1], item[2]
    xs = [min(max(float(point[0]) * scale[0], 0.0), size[0]) for point in points]
    ys = [min(max(float(point[1]) * scale[1], 0.0), size[1]) for point in points]
    box = (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))
    return OcrLine(str(text).strip(), round(float(score), 4), box)


_reader: Reader | None = None
_reader_lock = threading.Lock()


def get_reader() -> Reader:
    """The process's one ``Reader``, built on first use (about a second)."""
    global _reader
    with _reader_lock:
        if _reader is None:
            _reader = Reader()
        return _reader
