"""The acceptance test of the sandbox page: a person, in real headless Chromium, and the real bot.

``telegram_bot`` runs the product's ``run_app`` (python-telegram-bot, the sandbox Bot API, the
page, the real Rasa model and action server, a fresh store); the page is the one it serves. The
person opens ``/sandbox``, asks the bot privately about a "download an app and do tasks" offer,
gets the 刷单返利 warning with its buttons, presses one and reads the answer; then posts the seed
text in a group and sees the bot reply to it there. Nothing on the page may fail along the way: no
script error, no console error, no failed request, no request off the origin.

The chats are 小张's private chat (1003) and 新居民互助群 (-1001003), which the tests in
tests/telegram leave alone; the test finds its messages by id, so earlier messages in the same
chats would not confuse it. Screenshots go to reports/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.store.repo import Store
from bot.web.sandbox_page import CONTENT_SECURITY_POLICY
from tests.web.browsing import SCREENSHOTS, Browser, Locator, Page, expect, watch

pytestmark = pytest.mark.rasa

QUESTION = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"
SEED = "用手机下载软件做任务，就能拿订单"
ME = {"id": 1003, "first_name": "小张"}
GROUP = {"id": -1001003, "title": "新居民互助群"}
WARNING_BUTTONS = ["我已经转账了", "补充举报详情", "订阅防骗提醒"]
BOT_MS = 30_000  # a reply goes through Rasa and the action server


@pytest.fixture
def page(telegram_bot, browser: Browser) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1180, "height": 860}, locale="zh-CN")
    tab = context.new_page()
    tab.watch = watch(tab, telegram_bot.web)
    try:
        yield tab
    finally:
        context.close()


def _send(page: Page, text: str) -> Locator:
    """Type ``text`` and press Enter, as a person does; the sent message on the page."""
    box = page.get_by_role("textbox", name="消息")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")
    mine = page.locator(".msg.mine", has_text=text).last
    expect(mine).to_be_visible()
    return mine


def _bot_reply_after(page: Page, message: Locator) -> Locator:
    """The bot's first message after ``message`` (the messages are siblings, in order)."""
    message_id = message.get_attribute("data-message-id")
    assert message_id and message_id.isdigit(), message_id
    return page.locator(f"#m-{message_id} ~ .msg.bot").first


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_a_resident_checks_a_scam_with_the_real_bot(page: Page, telegram_bot, stack) -> None:
    response = page.goto(f"{telegram_bot.web}/sandbox")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    expect(page).to_have_title("反诈助手 · 沙盒")
    chats = page.get_by_role("navigation", name="聊天")

    # Be 小张 and open the private chat with the bot.
    page.get_by_label("选择身份").select_option(str(ME["id"]))
    chats.locator(f'.chat-item[data-chat-id="{ME["id"]}"]').click()
    expect(page.locator("#conv-title")).to_have_text("与反诈助手私聊")
    expect(page.locator("#me-badge")).to_have_text(f"我是 {ME['first_name']}")
    expect(page.locator("#mention")).to_be_hidden()  # no @ in a private chat

    # Ask about the offer: the bot's warning appears, with its buttons.
    question = _send(page, QUESTION)
    warning = _bot_reply_after(page, question)
    expect(warning.locator(".text")).to_contain_text("刷单返利", timeout=BOT_MS)
    expect(warning.locator(".text")).to_contain_text("96110")
    expect(warning.locator(".sender")).to_have_text("反诈助手")
    buttons = warning.locator(".keyboard").get_by_role("button")
    expect(buttons).to_have_text(WARNING_BUTTONS)
    for name in WARNING_BUTTONS:
        expect(warning.get_by_role("button", name=name, exact=True)).to_be_enabled()
    # What the page shows is what the bot sent.
    warning_id = int(warning.get_attribute("data-message-id") or 0)
    [sent] = [m for m in telegram_bot.bot_messages(ME["id"]) if m["message_id"] == warning_id]
    expect(warning.locator(".text")).to_have_text(sent["text"])
    _shot(page, "product-private-warning.png")

    # Press "我已经转账了": the press goes as 小张, and the bot's urgent advice follows.
    warning.get_by_role("button", name="我已经转账了").click()
    expect(page.locator("#toast")).to_contain_text("小张 按了“我已经转账了”")
    answer = _bot_reply_after(page, warning)
    expect(answer.locator(".text")).to_contain_text("110", timeout=BOT_MS)
    expect(answer.locator(".text")).to_contain_text("银行")
    reports = Store(stack.settings.database_url).reports_of(f"tg:{ME['id']}:{ME['id']}")
    assert any(report.money_lost for report in reports), "the press did not reach the bot"
    _shot(page, "product-private-pressed.png")

    # In a group: the seed text, posted as 小张 without @, gets a reply quoting it.
    chats.locator(f'.chat-item[data-chat-id="{GROUP["id"]}"]').click()
    expect(page.locator("#conv-title")).to_have_text(GROUP["title"])
    expect(page.locator("#mention")).to_be_visible()
    posted = _send(page, SEED)
    expect(posted.locator(".sender")).to_have_text(ME["first_name"])
    reply = _bot_reply_after(page, posted)
    expect(reply.locator(".text")).to_contain_text("刷单返利", timeout=BOT_MS)
    expect(reply.locator(".text")).to_contain_text("“下载软件做任务”")
    expect(reply.locator(".quote .quote-name")).to_have_text(ME["first_name"])
    expect(reply.locator(".quote .quote-text")).to_have_text(SEED)
    _shot(page, "product-group-warning.png")

    # The private chat kept its conversation (the list follows the person, not the screen).
    chats.locator(f'.chat-item[data-chat-id="{ME["id"]}"]').click()
    expect(page.locator(f"#m-{warning_id} .text")).to_contain_text("刷单返利")

    assert page.watch.problems == []
    assert any("/sandbox/send" in url for url in page.watch.requests)
