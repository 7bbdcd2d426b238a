"""Reading forwarded screenshots: real OCR on the committed fixtures, and hostile input refused.

The fixtures are drawn by ``tests/fixtures/screenshots/make_screenshots.py``; the tests read
only the PNGs. Timings are printed and summarised at the end of the run, never asserted.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import os
import re
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.nlp.normalize import normalize_text
from bot.ocr import (
    MAX_BYTES,
    OcrError,
    OcrLine,
    OcrResult,
    Reader,
    get_reader,
    layout,
)

from .helpers import SCREENSHOTS, record

Load = Callable[[str], bytes]


def read(reader: Reader, data: bytes, what: str) -> OcrResult:
    result = reader.read(data)
    record(what, f"{result.width}x{result.height}", result.seconds, len(result.lines))
    return result


def refused(reader: Reader, data: bytes, what: str) -> OcrError:
    started = time.perf_counter()
    with pytest.raises(OcrError) as caught:
        reader.read(data)
    print(f"OCR {what}: refused as {caught.value.reason} in {time.perf_counter() - started:.3f} s")
    return caught.value


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


# ----------------------------------------------------------------------------- screenshots


def test_bank_sms_link_and_wrapped_sentence(reader: Reader, screenshot: Load) -> None:
    result = read(reader, screenshot("sms_bank"), "sms_bank")
    text = result.text
    assert "【中国银行】" in text
    assert "http://boc-safe.top" in text
    # "您尾号" ends one line and "3317的账户" starts the next: one sentence again.
    assert "您尾号3317的账户存在异常" in text
    assert "否则将于24小时内冻结" in text
    # The two SMS are two lines of the text, in the order they were received.
    first = next(line for line in text.splitlines() if "尊敬的客户" in line)
    assert first.startswith("【中国银行】") and first.endswith("退订回T")
    assert text.index("尊敬的客户") < text.index("温馨提示")


def test_wechat_task_scam(reader: Reader, screenshot: Load) -> None:
    result = read(reader, screenshot("wechat_task"), "wechat_task")
    text = result.text
    # "下载软件做任" / "务" are two lines of one bubble.
    assert "下载软件做任务" in text
    assert "拿订单" in text
    assert "刷单任务" in text
    assert "www.tdb-app.cc" in text
    lines = text.splitlines()
    assert "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？" in lines
    assert "要先交钱吗？" in lines  # a short bubble stays its own line
    order = ["客服-小雨", "您好", "群里有人说", "淘单宝", "要先交钱", "第一单"]
    positions = [text.index(words) for words in order]
    assert positions == sorted(positions)


def test_traditional_characters(reader: Reader, screenshot: Load) -> None:
    result = read(reader, screenshot("traditional_post"), "traditional_post")
    text = result.text
    for words in ("香港郵政", "包裹", "無法派送", "逾期將退回", "凍結", "hkpost-hk.cc"):
        assert words in text
    # What the rest of the bot works on: the simplified, half-width form.
    assert "香港邮政" in normalize_text(text)


def test_phone_and_bank_card_digits(reader: Reader, screenshot: Load) -> None:
    result = read(reader, screenshot("taobao_refund"), "taobao_refund")
    text = result.text
    assert "13824681357" in text
    assert "6222021234567890123" in text
    assert "6217003610002548893" in compact(text)  # typed in groups, over two lines
    assert "双倍理赔退款" in text


def test_dark_low_contrast(reader: Reader, screenshot: Load) -> None:
    result = read(reader, screenshot("dark_low_contrast"), "dark_low_contrast")
    assert "【顺丰速运】" in result.text
    assert "理赔三倍运费" in result.text
    assert "285733196" in result.text


def test_photo_without_text_is_empty(reader: Reader, screenshot: Load) -> None:
    started = time.perf_counter()
    error = refused(reader, screenshot("photo_no_text"), "photo_no_text")
    record("photo_no_text (empty)", "800x600", time.perf_counter() - started, 0)
    assert error.reason == "empty"
    assert "文字" in error.message


def test_result_shape(reader: Reader, screenshot: Load) -> None:
    """Lines in reading order, boxes in the pixels of the image as sent (not the scaled one)."""
    result = read(reader, screenshot("sms_bank"), "sms_bank (again)")
    assert (result.width, result.height) == (1080, 2340)  # read scaled down to 2000 px
    assert result.lines
    for above, below in itertools.pairwise(result.lines):
        assert below.box[3] > above.box[1]  # never a line wholly above the one before
    for line in result.lines:
        left, top, right, bottom = line.box
        assert 0 <= left < right <= result.width
        assert 0 <= top < bottom <= result.height
        assert 0.5 <= line.confidence <= 1.0
        assert line.text
    mean = sum(line.confidence for line in result.lines) / len(result.lines)
    assert result.confidence == pytest.approx(mean)
    bottom_bar = next(line for line in result.lines if "彩信" in line.text)
    assert bottom_bar.box[1] > 2200  # the input bar is at the bottom of the full-size screen
    assert result.seconds > 0


# ----------------------------------------------------------------------------- other formats


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("JPEG", {"quality": 80}), ("WEBP", {"quality": 80}), ("GIF", {})],
)
def test_other_formats(reader: Reader, screenshot: Load, fmt: str, params: dict) -> None:
    image = Image.open(io.BytesIO(screenshot("taobao_refund"))).convert("RGB")
    result = read(reader, encode(image, fmt, **params), f"taobao_refund as {fmt}")
    assert "13824681357" in result.text


def test_animated_gif_reads_the_first_frame(reader: Reader, screenshot: Load) -> None:
    first = Image.open(io.BytesIO(screenshot("traditional_post"))).convert("RGB")
    blank = Image.new("RGB", first.size, "white")
    data = encode(first, "GIF", save_all=True, append_images=[blank], duration=500, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    result = read(reader, data, "traditional_post as animated GIF")
    assert "香港郵政" in result.text


def test_transparent_png_on_white(reader: Reader) -> None:
    """Black text on a transparent background: flattened on white, not on black."""
    source = Image.open(SCREENSHOTS / "traditional_post.png").convert("L")
    alpha = source.point(lambda level: 255 - level)  # the ink opaque, the paper transparent
    rgba = Image.new("RGBA", source.size, (0, 0, 0, 0))
    rgba.putalpha(alpha)
    result = read(reader, encode(rgba, "PNG"), "traditional_post as transparent RGBA")
    assert "香港郵政" in result.text


def test_sixteen_bit_grey_png(reader: Reader) -> None:
    grey = np.asarray(Image.open(SCREENSHOTS / "taobao_refund.png").convert("L"), np.uint16)
    image = Image.fromarray(grey * 257)
    assert image.mode.startswith("I")
    result = read(reader, encode(image, "PNG"), "taobao_refund as 16-bit grey")
    assert "13824681357" in result.text


def test_exif_rotated_photo_is_turned_upright(reader: Reader) -> None:
    """A phone photo stored sideways with an orientation tag, as cameras save them."""
    upright = Image.open(SCREENSHOTS / "traditional_post.png").convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    data = encode(sideways, "JPEG", quality=85, exif=exif)
    result = read(reader, data, "traditional_post as rotated JPEG")
    assert (result.width, result.height) == upright.size
    assert "香港郵政" in result.text


def test_large_jpeg_is_scaled_down(reader: Reader) -> None:
    """A 4000 px photo of the screen: decoded small, boxes reported in its own pixels."""
    image = Image.open(SCREENSHOTS / "taobao_refund.png").convert("RGB")
    big = image.resize((image.width * 2 + 560, image.height * 2 + 1244))  # 2000x4444
    result = read(reader, encode(big, "JPEG", quality=85), "taobao_refund as 2000x4444 JPEG")
    assert (result.width, result.height) == big.size
    assert "13824681357" in result.text
    assert max(line.box[3] for line in result.lines) <= big.height
    assert max(line.box[3] for line in result.lines) > big.height / 2


# ----------------------------------------------------------------------------- hostile input


def test_zero_bytes(reader: Reader) -> None:
    assert refused(reader, b"", "zero bytes").reason == "not_an_image"


def test_random_bytes(reader: Reader) -> None:
    data = np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    assert refused(reader, data, "random bytes").reason == "not_an_image"


def test_text_file_and_pdf(reader: Reader) -> None:
    assert refused(reader, "您的账户存在异常".encode(), "text").reason == "not_an_image"
    assert refused(reader, b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "pdf").reason == "not_an_image"


def test_formats_outside_the_list_are_not_opened(reader: Reader) -> None:
    """Pillow reads EPS through Ghostscript, ICO, PSD...: none of that for strangers' files."""
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"
    assert refused(reader, eps, "EPS").reason == "not_an_image"
    ico = encode(Image.new("RGB", (32, 32), "white"), "ICO")
    assert refused(reader, ico, "ICO").reason == "not_an_image"


def test_truncated_png(reader: Reader, screenshot: Load) -> None:
    data = screenshot("wechat_task")
    assert refused(reader, data[: len(data) // 2], "truncated PNG").reason == "unreadable"
    assert refused(reader, data[:40], "PNG header only").reason == "unreadable"


def test_corrupt_png_data(reader: Reader) -> None:
    header = b"\x89PNG\r\n\x1a\n" + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    )
    data = header + png_chunk(b"IDAT", b"this is not zlib data") + png_chunk(b"IEND", b"")
    assert refused(reader, data, "corrupt IDAT").reason == "unreadable"


def test_one_pixel(reader: Reader) -> None:
    data = encode(Image.new("RGB", (1, 1), "white"), "PNG")
    assert refused(reader, data, "1x1 PNG").reason == "empty"


def test_thin_strip(reader: Reader) -> None:
    data = encode(Image.new("RGB", (3000, 4), "black"), "PNG")
    assert refused(reader, data, "3000x4 PNG").reason == "empty"


def test_decompression_bomb_is_refused_from_the_header(
    reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid 12000x12000 PNG of 144 megapixels that is only ~140 KB: never decoded."""
    width = height = 12000
    squeeze = zlib.compressobj(9)
    row = b"\x00" + bytes(width)  # filter byte, then a white-or-black row of grey pixels
    body = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", body)
        + png_chunk(b"IEND", b"")
    )
    assert len(data) < MAX_BYTES

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("a bomb must be refused before it is decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    assert refused(reader, data, "12000x12000 PNG").reason == "too_large"


def test_just_over_forty_megapixels(reader: Reader) -> None:
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 5001, 8, 2, 0, 0, 0))
    data = b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", zlib.compress(b"\x00" * 24001))
    assert refused(reader, data, "8000x5001 header").reason == "too_large"


def test_file_over_ten_megabytes(reader: Reader) -> None:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(MAX_BYTES)
    assert refused(reader, data, "10 MB + 8 bytes").reason == "too_large"


# ----------------------------------------------------------------------------- the reader


def test_reader_is_shared(reader: Reader) -> None:
    assert get_reader() is reader


@pytest.mark.anyio
async def test_aread_in_threads_at_once(reader: Reader, screenshot: Load) -> None:
    """Two residents at once: both answered, each with its own text (the engine is locked)."""
    started = time.perf_counter()
    post, refund = await asyncio.gather(
        reader.aread(screenshot("traditional_post")), reader.aread(screenshot("taobao_refund"))
    )
    record(
        "two at once (aread)",
        "750x1334+720x1600",
        time.perf_counter() - started,
        len(post.lines) + len(refund.lines),
    )
    assert "香港郵政" in post.text and "13824681357" not in post.text
    assert "13824681357" in refund.text and "香港郵政" not in refund.text


@pytest.mark.anyio
async def test_aread_refusal(reader: Reader) -> None:
    with pytest.raises(OcrError) as caught:
        await reader.aread(b"not an image")
    assert caught.value.reason == "not_an_image"


def test_engine_logs_are_quiet(
    reader: Reader, screenshot: Load, capfd: pytest.CaptureFixture[str]
) -> None:
    for name in ("RapidOCR", "OrtInferSession"):
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
    reader.read(screenshot("traditional_post"))
    assert capfd.readouterr().err == ""


def test_models_come_from_the_wheel() -> None:
    import rapidocr_onnxruntime

    models = Path(rapidocr_onnxruntime.__file__).parent / "models"
    assert sorted(path.suffix for path in models.iterdir()).count(".onnx") >= 3


def test_error_reasons() -> None:
    for reason in ("not_an_image", "too_large", "empty", "unreadable"):
        error = OcrError(reason, "detail")  # type: ignore[arg-type]
        assert isinstance(error, ValueError)
        assert error.reason == reason
        assert re.search(r"[\u4e00-\u9fff]", error.message)
        assert reason in str(error)


# ----------------------------------------------------------------------------- layout


def line(text: str, left: int, top: int, right: int, height: int = 40) -> OcrLine:
    return OcrLine(text, 0.99, (left, top, right, top + height))


def test_layout_joins_a_wrapped_bubble_and_keeps_bubbles_apart() -> None:
    lines = [
        line("是的亲，先下载我们的APP「淘", 200, 100, 860),
        line("单宝」，注册后做刷单任务，垫", 200, 150, 860),
        line("付越多返利越多。", 200, 200, 550),
        line("要先交钱吗？", 590, 330, 850),  # the next bubble, on the other side
        line("第一单只要垫付98元，马上返本", 200, 460, 870),
        line("金加佣金。", 200, 510, 420),
    ]
    ordered, text = layout(list(reversed(lines)))
    assert ordered == tuple(lines)
    assert text.splitlines() == [
        "是的亲，先下载我们的APP「淘单宝」，注册后做刷单任务，垫付越多返利越多。",
        "要先交钱吗？",
        "第一单只要垫付98元，马上返本金加佣金。",
    ]


def test_layout_rows_left_to_right_and_latin_words_spaced() -> None:
    lines = [
        line("64", 840, 30, 950, 38),
        line("15:16", 60, 32, 166, 37),  # a status bar: one row, left to right
        line("Your account is locked, please", 60, 200, 800),
        line("verify at once", 60, 250, 400),
        line("95566", 460, 400, 620, 48),  # a title over its subtitle stays two lines
        line("中国银行", 470, 452, 610, 44),
    ]
    _, text = layout(lines)
    assert text.splitlines() == [
        "15:16 64",
        "Your account is locked, please verify at once",
        "95566",
        "中国银行",
    ]


def test_layout_one_line_split_by_the_detector() -> None:
    _, text = layout([line("请添加客服", 60, 100, 300), line("QQ285733196", 320, 102, 560)])
    assert text == "请添加客服QQ285733196"
