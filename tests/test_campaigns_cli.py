"""``antifraud campaigns`` on real stores (SQLite and PostgreSQL): each verb, its output, errors.

Deliveries are made the way the scheduler makes them (``plan_occurrence`` at due times of our
own choosing, then claimed and marked sent or failed), so the reports count real rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import campaigns_cli
from bot.nlp.taxonomy import load_taxonomy
from bot.settings import Settings
from bot.store import Store
from bot.store.campaigns import SHANGHAI, NewCampaign
from bot.store.models import AuditLog
from bot.store.types import utcnow
from campaigns.templates import TEMPLATES_DIR, load_templates
from tests.store import conftest as databases

# The store tests' real databases (each test runs on SQLite and on PostgreSQL), by name.
postgres_url = databases.postgres_url
sqlite_template = databases.sqlite_template
db_url = databases.db_url
store = databases.store

SETTINGS = Settings.from_env()
TAXONOMY = load_taxonomy(SETTINGS.taxonomy_path)


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def campaigns(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> Result:
    parser = argparse.ArgumentParser(prog="antifraud")
    sub = parser.add_subparsers(dest="command", required=True)
    campaigns_cli.add_parser(sub)
    args = parser.parse_args(["campaigns", *argv])
    settings = dataclasses.replace(SETTINGS, database_url=url, store_retry_seconds=5.0)
    capsys.readouterr()
    code = campaigns_cli.run(args, settings)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Result(code, captured.out, captured.err)


def local(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


@dataclasses.dataclass
class World:
    weekly: int  # recurring, 东湖社区/1网格, every day 10:00: the one with deliveries
    once: int  # once, 东湖社区/2网格, in two hours, a template, by lead2
    peak: int  # at peak times of rebate, no case data: no due time
    ended: int
    once_at: datetime
    lead1: int
    lead2: int


def make_world(store: Store) -> World:
    community = store.add_area("community", "东湖社区").id
    grid1 = store.add_area("grid", "1网格", community).id
    grid2 = store.add_area("grid", "2网格", community).id
    lead1 = store.add_user("lead1", "grid_leader", "王网格长", telegram_user_id=7101).id
    lead2 = store.add_user("lead2", "grid_leader", "李网格长", telegram_user_id=7102).id
    store.add_leader(grid1, lead1)
    store.add_leader(grid2, lead2)
    store.register_group("telegram", "-1007001", grid1, ["elderly"], lead1, "1网格老年人群")
    store.register_group("telegram", "-1007002", grid1, ["students"], lead1, "1网格学生群")
    store.register_group("telegram", "-1007003", grid2, ["elderly"], lead2, "2网格群")

    now = utcnow()
    day = (now.astimezone(SHANGHAI) - timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )  # yesterday, midnight in Asia/Shanghai
    common = {"starts_at": now - timedelta(days=7), "ends_at": now + timedelta(days=30)}
    weekly = store.add_campaign(
        NewCampaign(
            name="每日提醒",
            area_id=grid1,
            schedule_kind="recurring",
            schedule={"weekdays": [0, 1, 2, 3, 4, 5, 6], "times": ["10:00"]},
            text="最近有人冒充客服让大家退款，千万不要点陌生链接。",
            weekly_budget=2,
            **common,
        ),
        lead1,
    ).id
    once_at = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    once = store.add_campaign(
        NewCampaign(
            name="客服退款提醒",
            area_id=grid2,
            schedule_kind="once",
            schedule={"at": once_at.isoformat()},
            template_key="customer_service-all",
            scam_types=("customer_service",),
            audience_tags=("elderly",),
            quiet_start=None,
            quiet_end=None,
            **common,
        ),
        lead2,
    ).id
    peak = store.add_campaign(
        NewCampaign(
            name="刷单高发前",
            area_id=grid1,
            schedule_kind="peak",
            schedule={"lead_minutes": 30},
            scam_types=("rebate",),
            audience_tags=("students",),
            text="刷单返利都是骗局。",
            **common,
        ),
        lead1,
    ).id
    ended = store.add_campaign(
        NewCampaign(
            name="旧活动",
            area_id=grid1,
            schedule_kind="recurring",
            schedule={"weekdays": [5], "times": ["09:00"]},
            text="旧的提醒。",
            **common,
        ),
        lead1,
    ).id
    store.set_campaign_status(ended, "ended", "test")

    minute = timedelta(minutes=1)
    # 10:00 yesterday: both groups of grid 1 queued; one push sent, one failed.
    first = day + timedelta(hours=10)
    assert store.plan_occurrence(weekly, first, "提醒", first + minute) is not None
    claimed = sorted(store.deliveries_claim(10, first + minute), key=lambda d: d.chat_id)
    assert len(claimed) == 2
    store.delivery_sent(claimed[0].id, 11)
    store.delivery_fail(claimed[1].id, "Forbidden: bot was kicked from the group chat")
    # 23:00 yesterday: quiet hours for both.
    late = day + timedelta(hours=23)
    store.plan_occurrence(weekly, late, "提醒", late + minute)
    # Three days ago, planned only now: missed for both.
    store.plan_occurrence(weekly, day - timedelta(days=2, hours=-10), "提醒", now)
    # The students' group opts out: at noon the elderly group is queued, at 14:00 over budget.
    store.set_campaigns_opt_out("telegram", "-1007002", True, "test")
    noon = day + timedelta(hours=12)
    store.plan_occurrence(weekly, noon, "提醒", noon + minute)
    later = day + timedelta(hours=14)
    store.plan_occurrence(weekly, later, "提醒", later + minute)
    return World(weekly, once, peak, ended, once_at, lead1, lead2)


def next_ten_oclock() -> datetime:
    here = utcnow().astimezone(SHANGHAI)
    ten = here.replace(hour=10, minute=0, second=0, microsecond=0)
    return ten if ten > here else ten + timedelta(days=1)


def test_list_shows_each_campaign_with_its_next_due_time_and_counts(capsys, db_url, store):
    world = make_world(store)
    listed = campaigns(capsys, db_url, "list")
    assert listed.code == 0
    assert listed.lines == [
        f"#{world.ended:<4} 旧活动  已结束  每周定时  东湖社区/1网格  创建：王网格长（lead1）"
        "  下次：-  已发送 0 / 失败 0 / 跳过 0",
        f"#{world.peak:<4} 刷单高发前  进行中  高发时段前  东湖社区/1网格  创建：王网格长（lead1）"
        "  下次：-  已发送 0 / 失败 0 / 跳过 0",
        f"#{world.once:<4} 客服退款提醒  进行中  发一次  东湖社区/2网格  创建：李网格长（lead2）"
        f"  下次：{local(world.once_at)}  已发送 0 / 失败 0 / 跳过 0",
        f"#{world.weekly:<4} 每日提醒  进行中  每周定时  东湖社区/1网格  创建：王网格长（lead1）"
        f"  下次：{local(next_ten_oclock())}  已发送 1 / 失败 1 / 跳过 7",
    ]
    assert listed.err == "4 个活动\n"  # the peak campaign without case data: no problem

    active = campaigns(capsys, db_url, "list", "--status", "active")
    assert [line.split()[0] for line in active.lines] == [
        f"#{world.peak}",
        f"#{world.once}",
        f"#{world.weekly}",
    ]
    mine = campaigns(capsys, db_url, "list", "--by", "lead2")
    assert [line.split()[0] for line in mine.lines] == [f"#{world.once}"]

    records = json.loads(campaigns(capsys, db_url, "list", "--json").out)
    by_id = {r["id"]: r for r in records}
    weekly = by_id[world.weekly]
    assert weekly["counts"] == {"sent": 1, "failed": 1, "skipped": 7, "queued": 1, "sending": 0}
    assert weekly["created_by"] == "lead1" and weekly["area"] == "东湖社区/1网格"
    assert datetime.fromisoformat(weekly["next_due_at"]) == next_ten_oclock()
    assert weekly["schedule"] == {"weekdays": [0, 1, 2, 3, 4, 5, 6], "times": ["10:00"]}
    assert datetime.fromisoformat(by_id[world.once]["next_due_at"]) == world.once_at
    assert by_id[world.once]["template_key"] == "customer_service-all"
    assert by_id[world.peak]["next_due_at"] is None
    assert by_id[world.ended]["status"] == "ended"

    nobody = campaigns(capsys, db_url, "list", "--by", "nobody")
    assert (nobody.code, nobody.out) == (1, "")
    assert "antifraud campaigns: 没有用户“nobody”" in nobody.err


def test_show_is_the_delivery_report(capsys, db_url, store):
    world = make_world(store)
    shown = campaigns(capsys, db_url, "show", str(world.weekly))
    assert shown.code == 0
    lines = shown.lines
    assert lines[0] == f"活动 #{world.weekly} 每日提醒"
    for expected in (
        "  状态：进行中",
        "  区域：东湖社区/1网格（#2）",
        "  人群：全体居民",
        "  内容：自己写的：最近有人冒充客服让大家退款，千万不要点陌生链接。",
        "  安排：每周 周一、周二、周三、周四、周五、周六、周日 10:00",
        "  免打扰：22:00–07:00；每群每周最多 2 次；错过后 60 分钟内补发",
        f"  下次发送：{local(next_ten_oclock())}",
        "覆盖群数：2",
        "推送：已发送 1，失败 1，跳过 7，等待发送 1",
        "跳过原因：错过发送时间（missed） 2，群已退订（opted_out） 2，"
        "免打扰时段（quiet_hours） 2，超出每周上限（budget） 1",
        "失败原因：机器人被移出群或不能发言（Forbidden） 1",
        "最近 5 次：",
    ):
        assert expected in lines
    recent = lines[lines.index("最近 5 次：") + 1 :]
    day = (utcnow().astimezone(SHANGHAI) - timedelta(days=1)).strftime("%Y-%m-%d")
    three_days_ago = (utcnow().astimezone(SHANGHAI) - timedelta(days=3)).strftime("%Y-%m-%d")
    assert recent == [
        f"  {day} 23:00  已安排  跳过 2",
        f"  {day} 14:00  已安排  跳过 2",
        f"  {day} 12:00  已安排  跳过 1，等待发送 1",
        f"  {day} 10:00  已安排  已发送 1，失败 1",
        f"  {three_days_ago} 10:00  错过  跳过 2",
    ]

    record = json.loads(campaigns(capsys, db_url, "show", str(world.weekly), "--json").out)
    assert record["groups_targeted"] == 2
    assert record["counts"] == {"sent": 1, "failed": 1, "skipped": 7, "queued": 1, "sending": 0}
    assert record["skipped"] == {"quiet_hours": 2, "missed": 2, "opted_out": 2, "budget": 1}
    assert record["failed"] == {"Forbidden": 1}
    assert [o["status"] for o in record["occurrences"]] == ["planned"] * 4 + ["missed"]
    assert record["occurrences"][3]["counts"] == {"sent": 1, "failed": 1}
    assert record["schedule_text"] == "每周 周一、周二、周三、周四、周五、周六、周日 10:00"

    two = json.loads(
        campaigns(capsys, db_url, "show", str(world.weekly), "--json", "--occurrences", "2").out
    )
    assert [o["due_at"][11:16] for o in two["occurrences"]] == ["15:00", "06:00"]  # UTC

    once = campaigns(capsys, db_url, "show", str(world.once)).lines
    customer_service = TAXONOMY.get("customer_service").name
    for expected in (
        "  人群：老年人",
        f"  诈骗类型：{customer_service}",
        "  内容：模板 customer_service-all",
        f"  安排：发一次：{local(world.once_at)}",
        "  免打扰：不设；每群每周最多 3 次；错过后 60 分钟内补发",
        "覆盖群数：1",
        "推送：还没有推送",
        "还没有发送过",
    ):
        assert expected in once
    peak = campaigns(capsys, db_url, "show", str(world.peak)).lines
    assert f"  安排：{TAXONOMY.get('rebate').name}高发时段前 30 分钟" in peak
    assert "  下次发送：-" in peak

    for argv, code, message in (
        (("show", "999"), 1, "没有活动 #999"),
        (("show", "1", "--occurrences", "-1"), 2, "--occurrences 不能是负数"),
    ):
        refused = campaigns(capsys, db_url, *argv)
        assert (refused.code, refused.out) == (code, "")
        assert refused.err == f"antifraud campaigns: {message}\n"


def test_pause_resume_cancel_move_the_campaign_and_are_audited(capsys, db_url, store):
    world = make_world(store)
    paused = campaigns(capsys, db_url, "pause", str(world.weekly), "--actor", "wang")
    assert paused.code == 0
    assert paused.lines == [
        f"#{world.weekly} 每日提醒：进行中 → 已暂停",
        "  1 条等待发送的推送不会再发",
    ]
    assert store.get_campaign(world.weekly).status == "paused"
    report = store.campaign_report(world.weekly)
    assert report.counts.get("queued", 0) == 0 and report.skipped["campaign paused"] == 1
    shown = campaigns(capsys, db_url, "show", str(world.weekly)).lines
    assert "  状态：已暂停" in shown and "  下次发送：-" in shown
    assert any("活动暂停时未发（campaign paused） 1" in line for line in shown)

    again = campaigns(capsys, db_url, "pause", str(world.weekly))
    assert again.code == 1 and "现在是“已暂停”，不能暂停" in again.err

    resumed = campaigns(capsys, db_url, "resume", str(world.weekly))
    assert resumed.lines == [f"#{world.weekly} 每日提醒：已暂停 → 进行中"]
    not_paused = campaigns(capsys, db_url, "resume", str(world.weekly))
    assert not_paused.code == 1 and "现在是“进行中”，不能恢复" in not_paused.err

    cancelled = campaigns(capsys, db_url, "cancel", str(world.once))
    assert cancelled.lines == [f"#{world.once} 客服退款提醒：进行中 → 已停止"]
    assert store.get_campaign(world.once).status == "cancelled"
    for verb, word in (("pause", "暂停"), ("resume", "恢复"), ("cancel", "停止")):
        refused = campaigns(capsys, db_url, verb, str(world.once))
        assert refused.code == 1 and f"现在是“已停止”，不能{word}" in refused.err
    ended = campaigns(capsys, db_url, "resume", str(world.ended))
    assert ended.code == 1 and "现在是“已结束”" in ended.err
    missing = campaigns(capsys, db_url, "cancel", "999")
    assert missing.code == 1 and missing.err == "antifraud campaigns: 没有活动 #999\n"
    blank = campaigns(capsys, db_url, "pause", str(world.weekly), "--actor", " ")
    assert blank.code == 2 and store.get_campaign(world.weekly).status == "active"

    # A paused campaign whose end has passed cannot be resumed.
    store.run_in(
        lambda s: s.execute(
            sa.text("UPDATE campaigns SET ends_at = :t, status = 'paused' WHERE id = :i"),
            {"t": utcnow() - timedelta(hours=1), "i": world.peak},
        ),
        write=True,
    )
    over = campaigns(capsys, db_url, "resume", str(world.peak))
    assert over.code == 1 and "已过结束时间" in over.err

    moves = store.run_in(
        lambda s: [
            (r.actor, r.target_id, r.details["to"])
            for r in s.execute(
                sa.select(AuditLog)
                .where(AuditLog.action == "campaign.status")
                .order_by(AuditLog.id)
            ).scalars()
        ],
        write=False,
    )
    assert moves[-3:] == [
        ("wang", world.weekly, "paused"),
        ("cli", world.weekly, "active"),
        ("cli", world.once, "cancelled"),
    ]


def test_templates_are_listed_and_a_broken_one_is_one_clear_line(capsys, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'unused.db'}"  # templates need no store
    templates = load_templates(TEMPLATES_DIR, taxonomy=TAXONOMY)
    listed = campaigns(capsys, url, "templates")
    assert listed.code == 0
    assert len(listed.lines) == len(templates) >= 12
    line = next(li for li in listed.lines if li.startswith("customer_service-all  "))
    title = templates["customer_service-all"].title
    assert line == (
        f"customer_service-all  {title}  类型：{TAXONOMY.get('customer_service').name}"
        "  人群：全体居民"
    )
    records = json.loads(campaigns(capsys, url, "templates", "--json").out)
    assert [r["key"] for r in records] == list(templates)
    assert records[0].keys() == {"key", "title", "scam_types", "audiences"}

    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "rebate-all.yml").write_text("key: rebate-all\ntitle: 刷单\n", encoding="utf-8")
    bad = campaigns(capsys, url, "templates", "--dir", str(broken))
    assert (bad.code, bad.out) == (1, "")
    assert bad.err.startswith("antifraud campaigns: 模板有问题：")
    assert "rebate-all.yml: missing key(s)" in bad.err
    empty = campaigns(capsys, url, "templates", "--dir", str(tmp_path / "none"))
    assert empty.code == 1 and "is not a directory of templates" in empty.err


def test_store_down_or_not_set_up_is_one_clear_line(capsys, tmp_path: Path):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    campaigns_cli.add_parser(sub)
    down = dataclasses.replace(
        SETTINGS, database_url="postgresql://postgres@127.0.0.1:1/none", store_retry_seconds=0.2
    )
    for argv in (["list"], ["show", "1"], ["pause", "1"]):
        args = parser.parse_args(["campaigns", *argv])
        capsys.readouterr()
        assert campaigns_cli.run(args, down) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "antifraud campaigns: 连不上数据库" in captured.err
        assert "Traceback" not in captured.err

    bare = tmp_path / "bare.db"
    sa.create_engine(f"sqlite:///{bare}").connect().close()
    result = campaigns(capsys, f"sqlite:///{bare}", "list")
    assert result.code == 1 and "先运行 antifraud db upgrade" in result.err
