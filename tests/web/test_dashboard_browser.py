"""The staff dashboard end to end in real headless Chromium, with the real bot and model.

``telegram_bot`` runs the product's ``run_app``: python-telegram-bot against the sandbox, the real
Rasa model and action server, a fresh store, and the dashboard on the same web server. A resident
(陈女士) asks the bot in the sandbox page about a 刷单 offer and is warned; the report is in the
store. A staff member then logs into the dashboard in another tab, opens the queue, opens the
report (its red flags marked), confirms it as 刷单返利, imports a case file through the upload page
and looks at the heatmap; meanwhile the bot's answer to 陈女士 arrives in her sandbox chat.
Nothing on either page may fail: no script error, no failed request, nothing off the origin.

Screenshots of the queue, the report, the heatmap and the answer go to reports/screenshots/.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.dashboard import passwords
from bot.store.repo import Store
from tests.web.browsing import SCREENSHOTS, Browser, Locator, Page, expect, watch

pytestmark = pytest.mark.rasa

SHANGHAI = ZoneInfo("Asia/Shanghai")
ME = {"id": 1004, "first_name": "陈女士"}
QUESTION = "有人拉我进群说兼职刷单，点赞关注就返佣金，先垫付388元接单，日结工资，是真的吗？"
PASSWORD = "staff pass phrase for the browser 2031"
CONFIRM_QUESTION = "确认这是诈骗？机器人会据此答复举报的居民。"
BOT_MS = 30_000  # a reply goes through Rasa and the action server
ANSWER_MS = 40_000  # the answers job runs every 10 s, then the outbox sends


@pytest.fixture
def tabs(telegram_bot, browser: Browser) -> Iterator[tuple[Page, Page]]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sandbox, dashboard = context.new_page(), context.new_page()
    sandbox.watch = watch(sandbox, telegram_bot.web)
    dashboard.watch = watch(dashboard, telegram_bot.web, confirms=[CONFIRM_QUESTION])
    try:
        yield sandbox, dashboard
        assert sandbox.watch.problems == [], sandbox.watch.problems
        assert dashboard.watch.problems == [], dashboard.watch.problems
    finally:
        context.close()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def _send(page: Page, text: str) -> Locator:
    box = page.get_by_role("textbox", name="消息")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")
    mine = page.locator(".msg.mine", has_text=text).last
    expect(mine).to_be_visible()
    return mine


def _case_file(path: Path) -> Path:
    """A small case file: 刷单返利 peaking on Wednesday evenings, other types spread out."""
    rng = random.Random(6)
    monday = datetime(2026, 9, 7, tzinfo=SHANGHAI)
    rows = []
    for number in range(1, 121):
        if number <= 70:
            kind = "刷单返利"
            evening = rng.choice([19, 20, 21])
            at = monday + timedelta(weeks=rng.randrange(10), days=2, hours=evening)
        else:
            kind = rng.choice(["虚假贷款", "冒充客服", "网络游戏交易"])
            at = monday + timedelta(weeks=rng.randrange(10), hours=rng.randrange(7 * 24))
        at += timedelta(minutes=rng.randrange(60))
        rows.append([f"E2E{number:04d}", at.strftime("%Y-%m-%d %H:%M"), kind, "3000", "35"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["案件编号", "案发时间", "诈骗类型", "损失金额", "年龄"])
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_staff_confirm_a_report_and_the_resident_hears_back(
    tabs: tuple[Page, Page], telegram_bot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    sandbox, dashboard = tabs
    web = telegram_bot.web
    store = Store(telegram_bot.settings.database_url)
    username = f"shen{secrets.token_hex(3)}"
    staff = store.add_user(username, "staff", "沈干事")
    store.set_password_hash(staff.id, passwords.hash_password(PASSWORD, username), "test")

    # 陈女士 asks the bot privately and is warned: a report is logged.
    sandbox.goto(f"{web}/sandbox")
    sandbox.get_by_label("选择身份").select_option(str(ME["id"]))
    sandbox.get_by_role("navigation", name="聊天").locator(
        f'.chat-item[data-chat-id="{ME["id"]}"]'
    ).click()
    _send(sandbox, QUESTION)
    expect(sandbox.locator(".msg.bot .text", has_text="刷单返利").last).to_be_visible(
        timeout=BOT_MS
    )
    [report] = [
        r for r in store.reports_of(f"tg:{ME['id']}:{ME['id']}", limit=20) if "388" in r.text
    ]

    # The staff member logs in and finds it in the queue.
    dashboard.goto(f"{web}/reports")
    expect(dashboard).to_have_url(f"{web}/login?next=/reports")
    dashboard.get_by_label("用户名").fill(username)
    dashboard.get_by_label("密码").fill(PASSWORD)
    dashboard.get_by_role("button", name="登录").click()
    expect(dashboard).to_have_url(f"{web}/reports")
    row = dashboard.locator("tr", has=dashboard.get_by_role("link", name=f"#{report.id}"))
    expect(row).to_contain_text("刷单返利")
    expect(row).to_contain_text("待处理")
    _shot(dashboard, "dashboard-queue.png")

    # The report: the resident's words with the red flags marked; confirm it as 刷单返利.
    row.get_by_role("link", name=f"#{report.id}").click()
    expect(dashboard).to_have_url(f"{web}/reports/{report.id}")
    expect(dashboard.locator(".message")).to_contain_text("388")
    expect(dashboard.locator(".message mark.flag").first).to_be_visible()
    _shot(dashboard, "dashboard-report.png")
    confirm = dashboard.locator("form", has=dashboard.get_by_role("button", name="确认诈骗"))
    confirm.get_by_label("确认为诈骗：类型").select_option("rebate")
    confirm.get_by_role("button", name="确认诈骗").click()
    expect(dashboard.locator(".notice").first).to_have_text("已确认为诈骗。")
    expect(dashboard.locator(".badge.status-confirmed").first).to_be_visible()

    # The bot answers 陈女士 in her chat.
    answer = sandbox.locator(".msg.bot .text", has_text=f"第{report.id}号消息")
    expect(answer).to_contain_text("确认是“刷单返利”诈骗", timeout=ANSWER_MS)
    _shot(sandbox, "dashboard-answer-in-sandbox.png")

    # A case file through the upload page, then the heatmap of 刷单返利.
    dashboard.goto(f"{web}/cases/import")
    dashboard.locator("input[type=file]").set_input_files(str(_case_file(tmp_path / "案件.csv")))
    dashboard.get_by_role("button", name="导入").click()
    expect(dashboard.locator("main")).to_contain_text("120")
    dashboard.goto(f"{web}/trends?source=cases&type=rebate")
    expect(dashboard.locator("table.heatmap")).to_be_visible()
    expect(dashboard.locator("main")).to_contain_text("周三")
    _shot(dashboard, "dashboard-heatmap.png")
    assert store.get_report(report.id).status == "answered"  # type: ignore[union-attr]
    store.close()
