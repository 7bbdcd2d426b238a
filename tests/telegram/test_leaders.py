"""Grid leaders in Telegram, end to end: the real bot against the sandbox and the real store.

Groups registered with /grid (by their leader only), opt-outs by a group's admins or its leader,
the guided /newcampaign conversation driven by button presses and typed answers (bad answers
re-asked, /cancel, the 取消 button, stale buttons), a resident's /newcampaign refused with their
conversation still answered by Rasa, and /campaigns and /campaign N over deliveries that the
bot's own herald really sent (and failed) to sandbox groups. The answer parsers are tested
directly at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from bot.store.campaigns import SHANGHAI, NewCampaign
from bot.store.repo import Store
from bot.store.types import utcnow
from bot.telegram.leaders import (
    InputError,
    parse_budget,
    parse_dates,
    parse_lead,
    parse_quiet,
    parse_time_of_day,
    parse_times,
    parse_when,
)
from campaigns.templates import load_templates

rasa = pytest.mark.rasa

SEED = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"
CHEN = {"id": 5001, "first_name": "陈网格长"}  # leads 3网格 and 5网格 (and 6网格)
LIU = {"id": 5002, "first_name": "刘网格长"}  # leads 4网格
ZHAO = {"id": 5003, "first_name": "赵阿姨"}  # a resident
QIAN = {"id": 5004, "first_name": "钱群主"}  # creates a group, so its Telegram owner


@dataclass
class Grid:
    store: Store
    chen: int
    liu: int
    grid3: int
    grid4: int
    grid5: int
    grid6: int


@pytest.fixture(scope="module")
def grid(telegram_bot) -> Grid:
    store = Store(telegram_bot.settings.database_url)
    community = store.add_area("community", "东湖社区H4")
    grid3 = store.add_area("grid", "3网格", community.id)
    grid4 = store.add_area("grid", "4网格", community.id)
    grid5 = store.add_area("grid", "5网格", community.id)
    grid6 = store.add_area("grid", "6网格", community.id)
    store.add_area("building", "1幢", grid3.id)
    store.add_area("building", "1幢", grid5.id)
    chen = store.add_user("chen_h4", "grid_leader", "陈网格长", telegram_user_id=CHEN["id"])
    liu = store.add_user("liu_h4", "grid_leader", "刘网格长", telegram_user_id=LIU["id"])
    for area in (grid3, grid5, grid6):
        store.add_leader(area.id, chen.id)
    store.add_leader(grid4.id, liu.id)
    return Grid(store, chen.id, liu.id, grid3.id, grid4.id, grid5.id, grid6.id)


def _buttons(message: dict) -> list[dict]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


class Chat:
    """One chat as a user sees it: say something or press a button, wait for the bot."""

    def __init__(self, bot, chat: dict, user: dict) -> None:  # type: ignore[no-untyped-def]
        self.bot, self.chat, self.user = bot, chat, user

    @property
    def id(self) -> int:
        return self.chat["id"]

    def seen(self) -> int:
        try:
            return len(self.bot.bot_messages(self.id))
        except httpx.HTTPStatusError as exc:  # a chat the sandbox has not seen yet
            if exc.response.status_code == 404:
                return 0
            raise

    def say(self, text: str, answers: int = 1, user: dict | None = None) -> list[dict]:
        """Send ``text``; the bot's ``answers`` new messages."""
        before = self.seen()
        sent = self.bot.send(chat=self.chat, **{"from": user or self.user}, text=text)
        self.last_sent = sent["message"]["message_id"]
        return self.bot.wait_bot(self.id, before + answers)[before:]

    def press(self, message: dict, data: str, answers: int = 1) -> list[dict]:
        assert data in [b["callback_data"] for b in _buttons(message)], (data, message)
        before = self.seen()
        self.bot.send(
            callback={
                "chat_id": self.id,
                "message_id": message["message_id"],
                "data": data,
                "from": self.user,
            }
        )
        return self.bot.wait_bot(self.id, before + answers)[before:]

    def toggle(self, message: dict, data: str, title: str) -> dict:
        """Press a toggle: the same message's keyboard changes to show ``title`` ticked."""
        self.press(message, data, answers=0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            current = next(
                m for m in self.bot.messages(self.id) if m["message_id"] == message["message_id"]
            )
            if any(b["text"] == f"✅ {title}" for b in _buttons(current)):
                return current
            time.sleep(0.05)
        raise AssertionError(f"{title} was not ticked on message {message['message_id']}")

    def press_titled(self, message: dict, title: str, answers: int = 1) -> list[dict]:
        [button] = [b for b in _buttons(message) if b["text"] == title]
        return self.press(message, button["callback_data"], answers)


def _private(bot, user: dict) -> Chat:  # type: ignore[no-untyped-def]
    return Chat(bot, {"id": user["id"], "type": "private"}, user)


def _groups(store: Store, area_id: int, tags: set[str]) -> int:
    return len([g for g in store.groups_in(area_id) if tags.intersection(g.tags)])


def _campaigns(grid: Grid, name: str) -> list:
    return [c for c in grid.store.campaigns_visible_to(grid.chen) if c.name == name]


def _shanghai_today() -> date:
    return utcnow().astimezone(SHANGHAI).date()


# --------------------------------------------------------------------------- groups


@rasa
def test_a_leader_registers_a_group_and_others_are_refused(telegram_bot, grid):
    group = Chat(
        telegram_bot, {"id": -1005001, "type": "supergroup", "title": "东湖H4三网格群"}, CHEN
    )
    [reply] = group.say("/grid 东湖社区H4/3网格 老年人 新居民")
    assert reply["reply_to_message_id"] == group.last_sent
    assert "已登记到：东湖社区H4/3网格" in reply["text"] and "老年人、新居民" in reply["text"]
    chat = grid.store.get_chat("telegram", "-1005001")
    assert chat is not None and chat.area_id == grid.grid3
    assert chat.tags == ("elderly", "new_residents") and chat.registered_by == grid.chen

    [refused] = group.say("/grid 东湖社区H4/3网格 学生", user=ZHAO)
    assert refused["reply_to_message_id"] == group.last_sent
    assert "只有本网格的网格长" in refused["text"]
    [other_leader] = group.say("/grid 东湖社区H4/3网格 学生", user=LIU)
    assert "您不是“东湖社区H4/3网格”的网格长" in other_leader["text"]
    assert "东湖社区H4/4网格" in other_leader["text"]  # where they may register it
    [taken] = group.say("/grid 东湖社区H4/4网格 学生", user=LIU)  # their grid, not the group's
    assert "本群已登记在“东湖社区H4/3网格”，只有那里的网格长可以改" in taken["text"]
    [unknown] = group.say("/grid 西湖社区/9网格", user=LIU)
    assert "没有找到“西湖社区/9网格”" in unknown["text"]
    [ambiguous] = group.say("/grid 1幢 老年人")
    assert "有 2 个地方叫“1幢”" in ambiguous["text"]
    assert (
        "东湖社区H4/3网格/1幢" in ambiguous["text"] and "东湖社区H4/5网格/1幢" in ambiguous["text"]
    )
    [bad_tag] = group.say("/grid 东湖社区H4/3网格 <b>坏标签</b>")
    assert "不能用" in bad_tag["text"]
    chat = grid.store.get_chat("telegram", "-1005001")
    assert chat is not None and chat.area_id == grid.grid3
    assert chat.tags == ("elderly", "new_residents")  # nothing changed by any of them

    [status] = group.say("/grid")
    assert "本群登记在：东湖社区H4/3网格" in status["text"]
    assert "人群标签：老年人、新居民" in status["text"] and "接收中" in status["text"]
    assert "/grid 东湖社区H4/3网格 老年人 新居民" in status["text"]  # their own area as example
    [resident_view] = group.say("/grid", user=ZHAO)
    assert "本群登记在：东湖社区H4/3网格" in resident_view["text"]
    assert "只有本网格的网格长可以登记" in resident_view["text"]


@rasa
def test_opt_out_by_a_group_admin_or_its_leader_and_not_by_a_member(telegram_bot, grid):
    group = Chat(
        telegram_bot, {"id": -1005002, "type": "supergroup", "title": "钱家小区H4群"}, QIAN
    )
    [off] = group.say("/campaigns_off")  # the first to post in a sandbox group owns it
    assert off["reply_to_message_id"] == group.last_sent and "不再接收" in off["text"]
    chat = grid.store.get_chat("telegram", "-1005002")
    assert chat is not None and chat.campaigns_opt_out is True

    [refused] = group.say("/campaigns_on", user=ZHAO)
    assert "只有群主、群管理员或本网格的网格长" in refused["text"]
    [leader_elsewhere] = group.say("/campaigns_on", user=CHEN)  # the group is not theirs yet
    assert "只有群主、群管理员或本网格的网格长" in leader_elsewhere["text"]
    chat = grid.store.get_chat("telegram", "-1005002")
    assert chat is not None and chat.campaigns_opt_out is True

    [registered] = group.say("/grid 东湖社区H4/5网格 学生", user=CHEN)
    assert "本群已退订活动推送" in registered["text"]
    [on] = group.say("/campaigns_on", user=CHEN)  # now a leader of the group's area
    assert "恢复接收" in on["text"]
    chat = grid.store.get_chat("telegram", "-1005002")
    assert chat is not None and chat.campaigns_opt_out is False
    [private] = _private(telegram_bot, QIAN).say("/campaigns_off")
    assert "请在要设置的群里发" in private["text"]


# --------------------------------------------------------------------------- the conversation


@rasa
def test_a_recurring_campaign_set_up_by_buttons_and_typed_answers(telegram_bot, grid):
    me = _private(telegram_bot, CHEN)
    [first] = me.say("/newcampaign")
    assert "/cancel" in first["text"] and "起个名字" in first["text"]
    [again] = me.say("这" * 41)
    assert "名字太长了" in again["text"] and "起个名字" in again["text"]
    [area] = me.say("冬季防养老诈骗H4")
    titles = [b["text"] for b in _buttons(area)]
    assert "东湖社区H4/3网格" in titles and "东湖社区H4/3网格/1幢" in titles
    assert "东湖社区H4/4网格" not in titles  # 刘's grid is not offered
    [not_mine] = me.say("东湖社区H4/4网格")
    assert "没有找到" in not_mine["text"] and _buttons(not_mine)
    [audience] = me.press_titled(not_mine, "东湖社区H4/3网格")
    [nothing] = me.press(audience, "lc:aud:done")
    assert "请至少选一项" in nothing["text"]
    current = me.toggle(nothing, "lc:aud:elderly", "老年人")
    current = me.toggle(current, "lc:aud:new_residents", "新居民")
    [content] = me.press(current, "lc:aud:done")
    titles = [b["text"] for b in _buttons(content)]
    assert "✍️ 自己写" in titles
    chosen = "听讲座送鸡蛋？卖的保健品治不了病"  # written for the elderly: offered
    assert chosen in titles
    [typed] = me.say("我自己随便打几个字")
    assert "请点一个模板" in typed["text"]
    preview, kind = me.press_titled(typed, chosen, answers=2)
    assert preview["text"].startswith("群里会收到这样的消息") and chosen in preview["text"]
    [days] = me.press(kind, "lc:kind:recurring")
    assert "每周哪几天" in days["text"]
    [stale] = me.press(kind, "lc:kind:once")  # an older step's button
    assert "这一步已经过去了" in stale["text"]
    current = me.toggle(stale, "lc:day:0", "周一")
    current = me.toggle(current, "lc:day:2", "周三")
    [times] = me.press(current, "lc:day:done")
    assert "几点发" in times["text"]
    [bad_time] = me.say("25:99")
    assert "不是一天里的时间" in bad_time["text"]
    [dates] = me.say("09:30，19:00")
    assert "从哪天开始" in dates["text"]
    start, end = _shanghai_today() + timedelta(days=1), _shanghai_today() + timedelta(days=20)
    [bad_dates] = me.say("随便哪天")
    assert "12月20日-1月20日" in bad_dates["text"]
    [quiet] = me.say(f"{start.month}月{start.day}日-{end.month}月{end.day}日")
    assert "免打扰时段" in quiet["text"]
    [budget] = me.say("21:30-07:30")
    assert "每周最多" in budget["text"]
    [bad_budget] = me.say("一百次")
    assert "1 到 50" in bad_budget["text"]
    [summary] = me.press(bad_budget, "lc:budget:2")
    text = summary["text"]
    assert "名称：冬季防养老诈骗H4" in text and "区域：东湖社区H4/3网格" in text
    assert "人群：老年人、新居民" in text and f"模板“{chosen}”" in text
    assert "每周定时：周一、周三 09:30、19:00" in text and "免打扰：21:30–07:30" in text
    assert "每群每周最多：2 次" in text
    reached = _groups(grid.store, grid.grid3, {"elderly", "new_residents"})
    assert f"现在能发到：{reached} 个群" in text
    [upcoming] = [row for row in text.split("\n") if row.startswith("接下来发送：")]
    due = upcoming.removeprefix("接下来发送：").split("；")
    assert len(due) == 3 and all("周一" in d or "周三" in d for d in due), upcoming
    [created] = me.press(summary, "lc:ok:yes")
    assert "已创建活动 #" in created["text"]

    [campaign] = _campaigns(grid, "冬季防养老诈骗H4")
    assert f"#{campaign.id}" in created["text"]
    assert campaign.created_by == grid.chen and campaign.area_id == grid.grid3
    assert campaign.audience_tags == ("elderly", "new_residents")
    assert campaign.template_key == "fundraising-elderly-health" and campaign.text is None
    assert campaign.scam_types == ("fundraising",)
    assert campaign.schedule_kind == "recurring"
    assert campaign.schedule == {"weekdays": [0, 2], "times": ["09:30", "19:00"]}
    assert campaign.starts_at == datetime(start.year, start.month, start.day, tzinfo=SHANGHAI)
    after = end + timedelta(days=1)
    assert campaign.ends_at == datetime(after.year, after.month, after.day, tzinfo=SHANGHAI)
    assert (campaign.quiet_start, campaign.quiet_end) == ("21:30", "07:30")
    assert campaign.weekly_budget == 2 and campaign.status == "active"

    [ended] = me.press(summary, "lc:ok:yes")  # the conversation is over: nothing twice
    assert "这次设置已经结束了" in ended["text"]
    assert len(_campaigns(grid, campaign.name)) == 1


@rasa
def test_a_peak_time_campaign_with_their_own_text(telegram_bot, grid):
    me = _private(telegram_bot, CHEN)
    me.say("/newcampaign")
    [area] = me.say("高发前提醒H4")
    assert "发给哪里的群" in area["text"]
    [audience] = me.say("东湖社区H4/5网格")  # typed instead of pressed
    assert "发给哪些人" in audience["text"]
    [tagged] = me.say("广场舞队")  # a custom tag, typed
    assert "已选：广场舞队" in tagged["text"]
    current = me.toggle(tagged, "lc:aud:students", "学生")
    [content] = me.press(current, "lc:aud:done")
    [own] = me.press(content, "lc:tpl:own")
    assert "写好发给我" in own["text"]
    text = "最近有人冒充快递客服说包裹丢了要理赔，让您下载软件共享屏幕，千万别信，先挂电话。"
    preview, kind = me.say(text, answers=2)
    assert "网格长提醒" in preview["text"] and text in preview["text"]
    [types] = me.press(kind, "lc:kind:peak")
    [none] = me.press(types, "lc:type:done")
    assert "请至少选一种诈骗" in none["text"]
    current = me.toggle(none, "lc:type:customer_service", "冒充电商物流客服")
    current = me.toggle(current, "lc:type:rebate", "刷单返利")
    [lead] = me.press(current, "lc:type:done")
    assert "开始前多久" in lead["text"]
    [bad_lead] = me.say("一整天")
    assert "提前多少分钟" in bad_lead["text"]
    [dates] = me.say("45分钟")
    [quiet] = me.press(dates, "lc:date:default")
    [budget] = me.press(quiet, "lc:quiet:none")
    assert "每周最多" in budget["text"]
    [summary] = me.say("每周4次")
    assert "高发时段前 45 分钟：冒充电商物流客服、刷单返利" in summary["text"]
    assert "人群：广场舞队、学生" in summary["text"] and "免打扰：不设" in summary["text"]
    reached = _groups(grid.store, grid.grid5, {"广场舞队", "students"})
    assert f"现在能发到：{reached} 个群" in summary["text"]
    [created] = me.press(summary, "lc:ok:yes")
    assert "已创建活动" in created["text"]

    [campaign] = _campaigns(grid, "高发前提醒H4")
    assert campaign.schedule_kind == "peak" and campaign.schedule == {"lead_minutes": 45}
    assert campaign.scam_types == ("customer_service", "rebate")
    assert campaign.audience_tags == ("广场舞队", "students")
    assert campaign.text == text and campaign.template_key is None
    assert campaign.quiet_start is None and campaign.quiet_end is None
    assert campaign.weekly_budget == 4
    today = _shanghai_today()
    after = today + timedelta(days=31)
    assert campaign.starts_at <= utcnow()
    assert campaign.ends_at == datetime(after.year, after.month, after.day, tzinfo=SHANGHAI)


@rasa
def test_a_one_off_campaign_checked_against_the_clock_and_quiet_hours_then_cancelled(
    telegram_bot, grid
):
    me = _private(telegram_bot, CHEN)
    me.say("/newcampaign")
    [area] = me.say("一次性提醒H4")
    [audience] = me.press_titled(area, "东湖社区H4/3网格")
    current = me.toggle(audience, "lc:aud:elderly", "老年人")
    current = me.toggle(current, "lc:aud:all", "全部")  # everybody instead
    assert not any(b["text"] == "✅ 老年人" for b in _buttons(current))
    [content] = me.press(current, "lc:aud:done")
    shown = [b for b in _buttons(content) if b["callback_data"].startswith("lc:tpl:")]
    assert len(shown) == 8 + 2  # the first eight, 看其他模板, 自己写
    [content] = me.press(content, "lc:tpl:more")
    shown = [b for b in _buttons(content) if b["callback_data"].startswith("lc:tpl:")]
    assert len(shown) == len(load_templates()) + 1
    preview, kind = me.press(content, "lc:tpl:0", answers=2)
    assert preview["text"].startswith("群里会收到这样的消息")
    [when] = me.press(kind, "lc:kind:once")
    assert "哪天几点发" in when["text"]
    yesterday = _shanghai_today() - timedelta(days=1)
    [past] = me.say(f"{yesterday.year}-{yesterday.month:02d}-{yesterday.day:02d} 19:30")
    assert "已经过去了" in past["text"]
    [nonsense] = me.say("下辈子")
    assert "看不懂" in nonsense["text"] or "请写上日期" in nonsense["text"]
    tomorrow = _shanghai_today() + timedelta(days=1)
    [quiet] = me.say(f"{tomorrow.month}月{tomorrow.day}日 23:00")
    [clash] = me.press(quiet, "lc:quiet:default")  # 23:00 falls in 22:00-07:00
    assert "在这个免打扰时段里" in clash["text"]
    [budget] = me.press(clash, "lc:quiet:none")
    [summary] = me.press(budget, "lc:budget:3")
    assert (
        "发一次：" in summary["text"] and f"{tomorrow.month}月{tomorrow.day}日" in summary["text"]
    )
    assert "23:00" in summary["text"] and "人群：全体居民" in summary["text"]
    [cancelled] = me.press(summary, "lc:ok:no")
    assert "已取消" in cancelled["text"]
    assert not _campaigns(grid, "一次性提醒H4")


@rasa
def test_cancel_at_a_step_and_the_conversation_goes_back_to_normal(telegram_bot, grid):
    me = _private(telegram_bot, CHEN)
    me.say("/newcampaign")
    [area] = me.say("取消测试H4")
    [busy] = me.say("/campaigns")  # another command mid-conversation: told, asked again
    assert "正在新建活动" in busy["text"] and _buttons(busy)
    [cancelled] = me.say("/cancel")
    assert "已取消" in cancelled["text"]
    [stale] = me.press(area, _buttons(area)[0]["callback_data"])
    assert "这次设置已经结束了" in stale["text"]
    [nothing] = me.say("/cancel")
    assert "没有进行中的设置" in nothing["text"]
    [answer] = me.say(SEED)  # the conversation with Rasa, as for anyone
    assert "刷单返利" in answer["text"]
    assert not _campaigns(grid, "取消测试H4")


@rasa
def test_a_resident_is_refused_and_still_answered_by_rasa(telegram_bot, grid):
    resident = _private(telegram_bot, ZHAO)
    [refused] = resident.say("/newcampaign")
    assert "这个命令是给网格长用的" in refused["text"]
    [listing] = resident.say("/campaigns")
    assert "这个命令是给网格长用的" in listing["text"]
    [answer] = resident.say(SEED)
    assert "刷单返利" in answer["text"] and "⚠️" in answer["text"]
    group = Chat(telegram_bot, {"id": -1005001, "type": "supergroup"}, ZHAO)
    [in_group] = group.say("/newcampaign")
    assert in_group["reply_to_message_id"] == group.last_sent
    assert "这个命令是给网格长用的" in in_group["text"]
    [leader_in_group] = group.say("/newcampaign", user=CHEN)
    assert "请私聊我" in leader_in_group["text"]


# --------------------------------------------------------------------------- reports


def _wait_counts(store: Store, campaign_id: int, **expected: int) -> dict[str, int]:
    deadline = time.monotonic() + 20
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = store.delivery_counts(campaign_id)
        if all(counts.get(k, 0) == v for k, v in expected.items()):
            return counts
        time.sleep(0.1)
    raise AssertionError(f"deliveries {counts}, expected {expected}")


@rasa
def test_campaigns_and_a_report_of_real_deliveries_with_its_buttons(telegram_bot, grid):
    store = grid.store
    # Four elderly groups in 6网格: two the bot is in, one Telegram does not know (the push
    # fails), one opted out.
    for chat_id, title in ((-1005061, "六网格一群"), (-1005062, "六网格二群")):
        telegram_bot.send(
            chat={"id": chat_id, "type": "supergroup", "title": title},
            **{"from": QIAN},
            text="今天下午社区有义诊",
        )
    for chat_id in (-1005061, -1005062, -1005063, -1005064):
        store.upsert_chat("telegram", str(chat_id), "group", f"群{chat_id}")
        store.register_group("telegram", str(chat_id), grid.grid6, ["elderly"], grid.chen)
    store.set_campaigns_opt_out("telegram", "-1005064", True, "test")

    now = utcnow()
    local = now.astimezone(SHANGHAI)
    quiet_from, quiet_to = local + timedelta(hours=3), local + timedelta(hours=4)
    campaign = store.add_campaign(
        NewCampaign(
            name="报告测试H4",
            area_id=grid.grid6,
            schedule_kind="recurring",
            schedule={"weekdays": [0, 1, 2, 3, 4, 5, 6], "times": ["10:00"]},
            starts_at=now + timedelta(days=5),  # the planner itself plans nothing yet
            ends_at=now + timedelta(days=40),
            audience_tags=("elderly",),
            text="降温了，也请留意骗子：陌生来电说您医保卡异常，先挂电话。",
            quiet_start=f"{quiet_from:%H:%M}",
            quiet_end=f"{quiet_to:%H:%M}",
            weekly_budget=1,
        ),
        grid.chen,
    )
    text = "📢 六网格网格长提醒\n\n降温了，也请留意骗子：陌生来电说您医保卡异常，先挂电话。"
    # Due a moment ago: the herald sends it (2 sent, 1 failed, 1 opted out).
    assert store.plan_occurrence(campaign.id, now - timedelta(minutes=3), text, now)
    _wait_counts(store, campaign.id, sent=2, failed=1)
    assert any(m["text"] == text for m in telegram_bot.bot_messages(-1005061))
    # Missed while down; in the quiet hours; over the week's budget.
    store.plan_occurrence(campaign.id, now - timedelta(hours=5), text, now)
    store.plan_occurrence(campaign.id, now + timedelta(hours=3, minutes=30), text, now)
    assert store.plan_occurrence(campaign.id, now - timedelta(minutes=1), text, now)
    counts = _wait_counts(store, campaign.id, sent=2, failed=2, queued=0, sending=0)
    assert counts["skipped"] == 12

    me = _private(telegram_bot, CHEN)
    [listing] = me.say("/campaigns")
    [line] = [row for row in listing["text"].split("\n") if row.startswith(f"#{campaign.id} ")]
    assert "报告测试H4 · 进行中 · 每周定时 · 东湖社区H4/6网格 · 下次：" in line
    assert "下次：暂无" not in line

    [report] = me.say(f"/campaign {campaign.id}")
    body = report["text"]
    assert f"活动 #{campaign.id}“报告测试H4”（进行中）" in body
    assert "目标群：4 个" in body and "已发送：2 次" in body
    assert "失败：2 次（Telegram 拒收（如群已不存在） 2）" in body
    assert "跳过：12 次" in body
    for reason in ("错过发送时间 4", "群已退订 3", "免打扰时段 3", "超出每周上限 2"):
        assert reason in body
    assert "最近几次：" in body and "（错过）" in body
    assert [b["text"] for b in _buttons(report)] == ["暂停", "停止"]

    [paused] = me.press_titled(report, "暂停")
    assert f"活动 #{campaign.id} 已暂停" in paused["text"] and "（已暂停）" in paused["text"]
    assert store.get_campaign(campaign.id).status == "paused"
    assert [b["text"] for b in _buttons(paused)] == ["恢复", "停止"]
    [again] = me.press_titled(report, "暂停")  # the old message's button: no longer possible
    assert "现在已暂停，不能暂停" in again["text"]
    [resumed] = me.press_titled(paused, "恢复")
    assert store.get_campaign(campaign.id).status == "active" and "已恢复" in resumed["text"]
    [stopped] = me.press_titled(resumed, "停止")
    assert store.get_campaign(campaign.id).status == "cancelled" and not _buttons(stopped)

    [other] = _private(telegram_bot, LIU).say(f"/campaign {campaign.id}")
    assert "没有找到您能查看的活动" in other["text"]
    [usage] = me.say("/campaign 报告")
    assert "请写上活动编号" in usage["text"]


# --------------------------------------------------------------------------- parsers


NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)  # 18:00 on 12月2日 in Shanghai


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12月20日 19:30", datetime(2026, 12, 20, 19, 30, tzinfo=SHANGHAI)),
        ("2026-12-20 19:30", datetime(2026, 12, 20, 19, 30, tzinfo=SHANGHAI)),
        ("２０２６年１２月２０日１９：３０", datetime(2026, 12, 20, 19, 30, tzinfo=SHANGHAI)),
        ("明天 晚上7点半", datetime(2026, 12, 3, 19, 30, tzinfo=SHANGHAI)),
        ("1月5日 8点", datetime(2027, 1, 5, 8, 0, tzinfo=SHANGHAI)),  # January: next year
        ("20:00", datetime(2026, 12, 2, 20, 0, tzinfo=SHANGHAI)),  # a time alone: today
    ],
)
def test_when_a_one_off_push_goes(text, expected):
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("12月2日 17:59", "已经过去了"),
        ("2026-11-30 19:00", "已经过去了"),
        ("2月30日 10:00", "没有2月30日"),
        ("12月20日", "几点"),
        ("2028-01-01 10:00", "一年以内"),
        ("下辈子", "看不懂"),
        ("12月20日 25:00", "看不懂"),
    ],
)
def test_a_time_that_cannot_be_used_says_why(text, why):
    with pytest.raises(InputError, match=why):
        parse_when(text, NOW)


def test_times_dates_quiet_hours_budget_and_lead():
    assert parse_time_of_day("下午3点") == "15:00" and parse_time_of_day("中午12点") == "12:00"
    assert parse_times("19:00,09:30，19:00、7点半") == ["07:30", "09:30", "19:00"]
    with pytest.raises(InputError, match="最多 6 个"):
        parse_times("1:00 2:00 3:00 4:00 5:00 6:00 7:00")
    today = date(2026, 12, 2)
    assert parse_dates("12月20日-1月20日", today) == (date(2026, 12, 20), date(2027, 1, 20))
    assert parse_dates("从2026-12-05到2026-12-06", today) == (date(2026, 12, 5), date(2026, 12, 6))
    assert parse_dates("12月10日", today) == (date(2026, 12, 10), date(2027, 1, 9))
    for bad, why in (("12月1日", "已经过去"), ("12月9日-12月5日", "之后"), ("随便", "12月20日")):
        with pytest.raises(InputError, match=why):
            parse_dates(bad, today)
    assert parse_quiet("21:30-07:00") == ("21:30", "07:00")
    assert parse_quiet("晚上10点到早上6点") == ("22:00", "06:00")
    assert parse_quiet("不设") is None
    with pytest.raises(InputError, match="同一个时间"):
        parse_quiet("22:00-22:00")
    assert parse_budget("每周五次") == 5 and parse_budget("3") == 3
    for bad in ("0", "51", "3或4", "很多"):
        with pytest.raises(InputError):
            parse_budget(bad)
    assert parse_lead("1小时") == 60 and parse_lead("半小时") == 30 and parse_lead("45分钟") == 45
    with pytest.raises(InputError):
        parse_lead("800")
