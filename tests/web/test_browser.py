"""The sandbox page in a real headless Chromium, against the real sandbox and a real PTB bot.

One event loop in a thread serves, with uvicorn on a free port, a Starlette app holding the
page's routes and the sandbox API (``bot.sandbox``), and runs a small bot written with
python-telegram-bot that polls that sandbox: it echoes text with two inline buttons, answers a
press with "按了:<data>", and answers "/html" with Telegram HTML (bold, an escaped script, a
``javascript:`` link). Playwright drives the page the way a person would.

The browser is the system's Chromium (``make browser``); Playwright never downloads one. Both are
hard requirements (``tests/web/browsing.py``): without them the tests fail and say what to install.
This page test uses a stand-in bot to reach cases the real one never sends (hostile HTML, photo
echoes); ``test_product_page.py`` is the acceptance test against the real bot.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.web.sandbox_page import routes as page_routes
from tests.web.browsing import SCREENSHOTS, Browser, Page, expect, watch

TOKEN = "7000000001:sandbox-page-test-token"
BOT_HTML = (
    '<b>重要</b> 提醒 &lt;script&gt;alert(2)&lt;/script&gt; <a href="javascript:alert(3)">链接</a>'
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small solid-colour PNG, built by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


# --- the bot ---------------------------------------------------------------------------------


async def _echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("是诈骗", callback_data="scam"),
                InlineKeyboardButton("不是", callback_data="fine"),
            ]
        ]
    )
    await message.reply_text(f"回声：{message.text}", reply_markup=keyboard, do_quote=True)


async def _photo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.photo
    data = await (await message.photo[-1].get_file()).download_as_bytearray()
    await message.reply_text(f"收到图片 {len(data)} 字节，说明：{message.caption or '无'}")


async def _html(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    await message.reply_text(BOT_HTML, parse_mode=ParseMode.HTML)


async def _pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    await query.answer()
    await context.bot.send_message(query.message.chat.id, f"按了:{query.data}")


def _bot(base: str) -> Application:
    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{base}/sandbox/bot")
        .base_file_url(f"{base}/sandbox/file/bot")
        .build()
    )
    application.add_handler(CommandHandler("html", _html))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, _echo))
    application.add_handler(MessageHandler(filters.PHOTO, _photo))
    application.add_handler(CallbackQueryHandler(_pressed))
    return application


# --- the server and the bot in one loop ------------------------------------------------------


@dataclass
class Site:
    base: str


async def _serve(port: int, started: threading.Event, stop: asyncio.Event) -> None:
    from bot.sandbox.server import create_app
    from bot.sandbox.state import SandboxState

    base = f"http://127.0.0.1:{port}"
    app = Starlette(routes=[*page_routes(), Mount("/", create_app(SandboxState(TOKEN)))])
    # The page's long polls (wait=25) outlive the closed browser on the server side: do not
    # wait for them when the module is done.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    application = _bot(base)
    try:
        await application.initialize()
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=10)
        started.set()
        await stop.wait()
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        server.should_exit = True
        await serving


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    port = _free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(_serve(port, started, stop))
        except BaseException as exc:  # reported below
            failure.append(exc)
            started.set()
        finally:
            # As asyncio.run does, let what uvicorn cancelled (the page's long polls) finish;
            # but not forever: on Python 3.10 a cancelled wait_for(Condition.wait()) in the
            # sandbox can stay stuck re-acquiring its lock.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=3))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="sandbox-page-site", daemon=True)
    thread.start()
    assert started.wait(20), "the sandbox and the bot did not start"
    if failure:
        raise failure[0]
    try:
        yield Site(f"http://127.0.0.1:{port}")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
        assert not thread.is_alive(), "the sandbox and the bot did not stop"
        if failure:
            raise failure[0]


@pytest.fixture
def page(site: Site, browser: Browser) -> Iterator[Page]:
    httpx.post(f"{site.base}/sandbox/reset", timeout=5).raise_for_status()
    context = browser.new_context(viewport={"width": 1100, "height": 760}, locale="zh-CN")
    tab = context.new_page()
    # The test cuts the server off on purpose (the offline notice), so refused requests are
    # allowed here; other origins, script errors and dialogs are not.
    tab.watch = watch(tab, site.base, strict_network=False)
    try:
        yield tab
    finally:
        context.close()


def _send(page: Page, text: str) -> None:
    box = page.locator("#input")
    box.fill(text)
    box.press("Enter")


# --- the test --------------------------------------------------------------------------------


def test_chat_with_the_bot_in_the_browser(page: Page, site: Site) -> None:
    started = time.monotonic()
    page.goto(f"{site.base}/sandbox")
    expect(page.locator(".chat-item")).to_have_count(4)
    for title in ("幸福村3组网格群", "阳光小区2号楼群", "新居民互助群", "与反诈助手私聊"):
        expect(page.locator(".chat-list")).to_contain_text(title)

    # Pick a group and a user.
    page.locator('.chat-item[data-chat-id="-1001002"]').click()
    page.locator("#user-picker").select_option("1003")
    expect(page.locator("#conv-title")).to_have_text("阳光小区2号楼群")
    expect(page.locator("#me-badge")).to_have_text("我是 小张")
    expect(page.locator("#mention")).to_be_visible()

    # Send a message (Enter), with the @-button; the bot replies quoting it, with buttons.
    page.locator("#mention").click()
    expect(page.locator("#input")).to_have_value("@antifraud_sandbox_bot ")
    page.locator("#input").press_sequentially("有人让我下载APP做任务返佣金")
    page.locator("#input").press("Shift+Enter")
    page.locator("#input").press_sequentially("是真的吗？")
    page.locator("#input").press("Enter")
    mine = page.locator(".msg.mine").first
    expect(mine.locator(".text")).to_have_text(
        "@antifraud_sandbox_bot 有人让我下载APP做任务返佣金\n是真的吗？"
    )
    expect(mine.locator(".sender")).to_have_text("小张")
    reply = page.locator(".msg.bot").first
    expect(reply.locator(".text")).to_contain_text("回声：@antifraud_sandbox_bot 有人让我")
    expect(reply.locator(".quote .quote-name")).to_have_text("小张")
    expect(reply.locator(".quote .quote-text")).to_contain_text("有人让我下载APP做任务返佣金")
    expect(reply.locator(".kb-button")).to_have_text(["是诈骗", "不是"])
    expect(page.locator("#input")).to_have_value("")

    # Press a button: the press goes as the current user, the bot answers.
    reply.locator(".kb-button", has_text="是诈骗").click()
    expect(page.locator(".msg.bot .text", has_text="按了:scam")).to_have_count(1)

    # Hostile HTML from a resident (and echoed by the bot) shows as text and never runs.
    hostile = "<script>alert(1)</script>"
    _send(page, hostile)
    expect(page.locator(".msg.mine .text", has_text=hostile)).to_have_text(hostile)
    expect(page.locator(".msg.bot .text", has_text=f"回声：{hostile}")).to_have_count(1)
    assert page.locator("#messages script").count() == 0

    # Telegram HTML from the bot: its tags format, escaped markup stays text, no javascript: link.
    _send(page, "/html")
    formatted = page.locator(".msg.bot .text", has_text="提醒")
    expect(formatted.locator("strong")).to_have_text("重要")
    expect(formatted).to_contain_text("<script>alert(2)</script>")
    assert formatted.locator("a").get_attribute("href") is None
    assert page.locator("#messages script").count() == 0

    # A forwarded message and a screenshot with a caption.
    page.locator("#forward").click()
    page.locator("#forward-name").fill("陌生客服")
    _send(page, "您的快递丢失，点击链接理赔")
    forwarded = page.locator(".msg.mine", has_text="您的快递丢失")
    expect(forwarded.locator(".forwarded")).to_have_text("↪ 转发自 陌生客服")
    expect(page.locator("#forward")).to_have_attribute("aria-pressed", "false")
    png = _png(120, 80, (220, 40, 40))
    page.locator("#photo-input").set_input_files(
        {"name": "截图.png", "mimeType": "image/png", "buffer": png}
    )
    expect(page.locator("#photo-bar")).to_be_visible()
    _send(page, "这个截图是真的吗")
    shot = page.locator(".msg.mine", has_text="这个截图是真的吗")
    expect(shot.locator("img.photo")).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg.mine img.photo')]"
        ".some((img) => img.complete && img.naturalWidth === 120)"
    )
    expect(page.locator(".msg.bot .text", has_text=f"收到图片 {len(png)} 字节")).to_contain_text(
        "说明：这个截图是真的吗"
    )

    # Other chats: the private chat follows the chosen user; the group kept its messages.
    page.locator(".chat-item", has_text="与反诈助手私聊").click()
    expect(page.locator("#conv-title")).to_have_text("与反诈助手私聊")
    expect(page.locator("#mention")).to_be_hidden()
    _send(page, "你好")
    expect(page.locator(".msg.bot .text", has_text="回声：你好")).to_have_count(1)
    messages = httpx.get(f"{site.base}/sandbox/chats/1003/messages", timeout=5).json()
    messages = messages["messages"] if isinstance(messages, dict) else messages
    assert [m["from_bot"] for m in messages] == [False, True]
    page.locator('.chat-item[data-chat-id="-1001002"]').click()
    expect(page.locator(".msg")).to_have_count(11)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "sandbox.png"))

    # No flicker: polling leaves an unchanged message's node alone.
    page.evaluate("() => { document.querySelector('.msg').dataset.probe = 'same-node'; }")
    page.wait_for_timeout(1600)  # two polls or more
    assert page.locator(".msg").first.get_attribute("data-probe") == "same-node"

    # The server stops answering: a clear notice, gone when it answers again.
    page.route("**/sandbox/chats/**", lambda route: route.abort())
    page.route("**/sandbox/chats", lambda route: route.abort())
    expect(page.locator("#offline")).to_be_visible(timeout=5000)
    expect(page.locator("#offline")).to_contain_text("连不上沙盒服务器")
    page.unroute("**/sandbox/chats/**")
    page.unroute("**/sandbox/chats")
    expect(page.locator("#offline")).to_be_hidden(timeout=5000)

    assert page.watch.problems == []
    assert time.monotonic() - started < 45


def test_phone_sized_window(site: Site, browser: Browser) -> None:
    httpx.post(f"{site.base}/sandbox/reset", timeout=5).raise_for_status()
    context = browser.new_context(
        viewport={"width": 390, "height": 760},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    try:
        page = context.new_page()
        seen = watch(page, site.base)  # nothing is cut off here: every request must succeed
        page.goto(f"{site.base}/sandbox")
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
        page.locator("#open-sidebar").click()
        expect(page.locator("#sidebar")).to_be_in_viewport()
        page.locator(".chat-item", has_text="幸福村3组网格群").click()
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
        page.locator("#input").fill("群里说扫码领鸡蛋，要填银行卡号，靠谱吗？")
        page.locator("#send").click()
        reply = page.locator(".msg.bot").first
        expect(reply.locator(".kb-button")).to_have_count(2)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "sandbox-phone.png"))
        assert seen.problems == []
    finally:
        context.close()
