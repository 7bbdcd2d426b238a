"""``antifraud grid`` on real stores (SQLite and PostgreSQL): each verb, its output, its errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import grid_cli
from bot.settings import Settings
from bot.store import Store
from bot.store.models import AuditLog
from tests.store import conftest as databases

# The store tests' real databases (each test runs on SQLite and on PostgreSQL), by name.
postgres_url = databases.postgres_url
sqlite_template = databases.sqlite_template
db_url = databases.db_url
store = databases.store


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def grid(capsys: pytest.CaptureFixture[str], url: str, *argv: str, retry: float = 5.0) -> Result:
    parser = argparse.ArgumentParser(prog="antifraud")
    sub = parser.add_subparsers(dest="command", required=True)
    grid_cli.add_parser(sub)
    args = parser.parse_args(["grid", *argv])
    settings = dataclasses.replace(
        Settings.from_env(), database_url=url, store_retry_seconds=retry
    )
    capsys.readouterr()
    code = grid_cli.run(args, settings)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Result(code, captured.out, captured.err)


def _tree(store: Store) -> None:
    """东湖社区 #1: 3网格 #2 (its 5幢 #4), 1网格 #3; 西湖社区 #5: 3网格 #6."""
    east = store.add_area("community", "东湖社区").id
    three = store.add_area("grid", "3网格", east).id
    store.add_area("grid", "1网格", east)
    store.add_area("building", "5幢", three)
    west = store.add_area("community", "西湖社区").id
    store.add_area("grid", "3网格", west)


def test_a_grid_is_built_from_nothing_and_printed_as_a_tree(capsys, db_url, store: Store):
    empty = grid(capsys, db_url, "areas")
    assert empty.code == 0
    assert "还没有区域" in empty.out and "add-area community" in empty.out

    first = grid(capsys, db_url, "add-area", "community", "东湖社区")
    assert (first.code, first.out) == (0, "已添加社区 #1 东湖社区\n")
    assert grid(capsys, db_url, "add-area", "grid", "3网格", "--in", "东湖社区").out == (
        "已添加网格 #2 东湖社区/3网格\n"
    )
    assert grid(capsys, db_url, "add-area", "grid", " 1网格 ", "--in", "1").code == 0
    assert grid(capsys, db_url, "add-area", "building", "5幢", "--in", "东湖社区/3网格").out == (
        "已添加楼栋 #4 东湖社区/3网格/5幢\n"
    )
    assert grid(capsys, db_url, "add-area", "community", "西湖社区").code == 0
    assert grid(capsys, db_url, "add-area", "grid", "3网格", "--in", "#5").code == 0
    # A unique name alone is enough for the parent.
    assert grid(capsys, db_url, "add-area", "building", "6幢", "--in", "1网格").out == (
        "已添加楼栋 #7 东湖社区/1网格/6幢\n"
    )
    assert [store.area_label(a.id) for a in store.areas()] == [
        "东湖社区",
        "东湖社区/3网格",
        "东湖社区/3网格/5幢",
        "东湖社区/1网格",
        "东湖社区/1网格/6幢",
        "西湖社区",
        "西湖社区/3网格",
    ]

    lead = store.add_user("wang", "grid_leader", "王网格长", telegram_user_id=7001)
    chief = store.add_user("zhang", "grid_leader")
    gone = store.add_user("old", "grid_leader", "离职的")
    store.add_leader(2, lead.id)
    store.add_leader(1, chief.id)
    store.add_leader(2, gone.id)
    store.run_in(
        lambda s: s.execute(
            sa.text("UPDATE users SET active = false WHERE id = :i"), {"i": gone.id}
        ),
        write=True,
    )
    store.register_group("telegram", "-1001", 2, ["elderly"], lead.id, "幸福村3组")
    store.register_group("telegram", "-1002", 4, [], lead.id, "5幢住户群")
    store.register_group("telegram", "-1003", 4, [], lead.id, "5幢二群")
    store.upsert_chat("telegram", "-1009", "group", "没登记的群")

    tree = grid(capsys, db_url, "areas")
    assert tree.code == 0
    assert tree.lines == [
        "#1 东湖社区（社区）  网格长：zhang  群：0，含下级共 3",
        "  #2 3网格（网格）  网格长：王网格长（wang）  群：1，含下级共 3",
        "    #4 5幢（楼栋）  网格长：-  群：2",
        "  #3 1网格（网格）  网格长：-  群：0",
        "    #7 6幢（楼栋）  网格长：-  群：0",
        "#5 西湖社区（社区）  网格长：-  群：0",
        "  #6 3网格（网格）  网格长：-  群：0",
    ]
    assert "7 个区域，3 个已登记的群" in tree.err

    records = json.loads(grid(capsys, db_url, "areas", "--json").out)
    assert [r["path"] for r in records][:3] == ["东湖社区", "东湖社区/3网格", "东湖社区/3网格/5幢"]
    assert records[1]["leaders"] == [
        {"username": "wang", "display_name": "王网格长", "telegram_user_id": 7001}
    ]
    assert (records[0]["groups"], records[0]["groups_total"]) == (0, 3)
    assert (records[2]["level"], records[2]["parent_id"], records[2]["groups"]) == (
        "building",
        2,
        2,
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (("grid", "4网格", "--in", "北湖社区"), 1, "没有找到区域“北湖社区”"),
        (("grid", "4网格", "--in", "#99"), 1, "没有编号为 #99 的区域"),
        (("building", "8幢", "--in", "3网格"), 2, "“3网格”有 2 处：东湖社区/3网格（#2）"),
        (("grid", "4网格", "--in", "东湖社区/3网格"), 2, "网格只能加在社区里"),
        (("building", "8幢", "--in", "东湖社区"), 2, "楼栋只能加在网格里"),
        (("building", "8幢"), 2, "楼栋要写在哪个网格里：--in 东湖社区/3网格"),
        (("grid", "4网格"), 2, "网格要写在哪个社区里：--in 东湖社区"),
        (("community", "南湖社区", "--in", "东湖社区"), 2, "社区是最上一级"),
        (("grid", "3网格", "--in", "东湖社区"), 1, "“东湖社区”里已经有“3网格”了（#2）"),
        (("community", "东湖社区"), 1, "已经有“东湖社区”了（#1）"),
        (("grid", "3/4网格", "--in", "东湖社区"), 2, "不能有 /"),
        (("grid", "12", "--in", "东湖社区"), 2, "只有数字"),
        (("community", "  "), 2, "名称不能为空"),
        (("community", "社" * 129), 2, "名称太长"),
        (("grid", "4网格", "--in", " "), 2, "区域不能为空"),
    ],
)
def test_add_area_refuses_what_cannot_be_added(capsys, db_url, store, argv, code, message):
    _tree(store)
    before = store.areas()
    result = grid(capsys, db_url, "add-area", *argv)
    assert result.code == code
    assert result.out == ""
    assert result.err.startswith("antifraud grid: ") and message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert store.areas() == before


def test_add_leader_creates_links_and_refuses(capsys, db_url, store: Store):
    _tree(store)
    made = grid(
        capsys, db_url, "add-leader", "wang", "--area", "东湖社区/3网格", "--telegram-id", "7001",
        "--name", "王网格长",
    )  # fmt: skip
    assert made.code == 0
    assert made.lines == [
        "王网格长（wang）现在是 东湖社区/3网格（#2）的网格长",
        "  已新建网格长账号 wang",
    ]
    wang = store.user_by_telegram(7001)
    assert wang is not None
    assert (wang.username, wang.role, wang.display_name) == ("wang", "grid_leader", "王网格长")
    assert store.leads(wang.id, 4) and not store.leads(wang.id, 3)

    # Again, for a second area by id: no new account; nothing to link.
    again = grid(capsys, db_url, "add-leader", "wang", "--area", "#3")
    assert again.lines == ["王网格长（wang）现在是 东湖社区/1网格（#3）的网格长"]
    assert store.leads(wang.id, 3)

    # Made without a Telegram id (told so), then linked, then renamed.
    li = grid(capsys, db_url, "add-leader", "li", "--area", "西湖社区")
    assert li.code == 0 and "还没有关联 Telegram 账号" in li.out
    linked = grid(
        capsys, db_url, "add-leader", "li", "--area", "西湖社区/3网格", "--telegram-id", "7002",
        "--name", "李网格长",
    )  # fmt: skip
    assert linked.lines == [
        "李网格长（li）现在是 西湖社区/3网格（#6）的网格长",
        "  已关联 Telegram 账号 7002",
        "  显示名改为 李网格长",
    ]
    assert store.user_by_telegram(7002).username == "li"  # type: ignore[union-attr]
    moved = grid(capsys, db_url, "add-leader", "li", "--area", "西湖社区", "--telegram-id", "7003")
    assert "Telegram 账号 7002 → 7003" in moved.out
    assert store.user_by_telegram(7002) is None

    # Someone else's Telegram id: refused for a new user and for an existing one.
    for username in ("zhao", "li"):
        taken = grid(
            capsys, db_url, "add-leader", username, "--area", "西湖社区", "--telegram-id", "7001"
        )
        assert taken.code == 1
        assert "Telegram 账号 7001 已经属于用户“wang”，没有改" in taken.err
    assert store.user_by_telegram(7001).username == "wang"  # type: ignore[union-attr]
    assert store.user_by_telegram(7003).username == "li"  # type: ignore[union-attr]

    staff = store.add_user("chen", "staff", "陈干事")
    noted = grid(capsys, db_url, "add-leader", "chen", "--area", "西湖社区")
    assert noted.code == 0 and "角色是 staff" in noted.out
    assert store.leads(staff.id, 6)

    for argv, code, message in (
        (("zhou", "--area", "北湖社区"), 1, "没有找到区域“北湖社区”"),
        (("zhou", "--area", "3网格"), 2, "有 2 处"),
        (("zhou zhou", "--area", "西湖社区"), 2, "不能有空格"),
        (("zhou", "--area", "西湖社区", "--telegram-id", "-5"), 2, "正整数"),
        (("zhou", "--area", "西湖社区", "--name", " "), 2, "显示名"),
    ):
        refused = grid(capsys, db_url, "add-leader", *argv)
        assert refused.code == code and message in refused.err
    assert grid_cli.user_by_name(store, "zhou") is None

    li_id = store.user_by_telegram(7003).id  # type: ignore[union-attr]
    actions = store.run_in(
        lambda s: {tuple(r) for r in s.execute(sa.select(AuditLog.action, AuditLog.target_id))},
        write=False,
    )
    assert {("leader.add", 2), ("leader.add", 6), ("user.update", li_id)} <= actions


def test_register_like_the_telegram_command_and_list_groups(capsys, db_url, store: Store):
    _tree(store)
    wang = store.add_user("wang", "grid_leader", "王网格长", telegram_user_id=7001)
    li = store.add_user("li", "grid_leader", "李网格长", telegram_user_id=7002)
    store.add_user("boss", "admin", "管理员")
    store.add_leader(2, wang.id)
    store.add_leader(6, li.id)

    done = grid(
        capsys, db_url, "register", "-1001", "--area", "东湖社区/3网格", "--tags",
        "老年人,新居民，全部", "--by", "wang", "--title", "幸福村3组网格群",
    )  # fmt: skip
    assert done.code == 0
    assert done.lines == [
        "群 -1001（幸福村3组网格群）已登记到：东湖社区/3网格（#2）",
        "  人群标签：老年人、新居民",
        "  “全部”不用登记：发给全体的活动会发到区域里的每个群",
    ]
    chat = store.get_chat("telegram", "-1001")
    assert chat is not None
    assert (chat.area_id, chat.tags, chat.registered_by, chat.title) == (
        2,
        ("elderly", "new_residents"),
        wang.id,
        "幸福村3组网格群",
    )

    # A building below the leader's grid, custom tags; the tags kept when --tags is left out.
    assert grid(
        capsys, db_url, "register", "-1002", "--area", "5幢", "--tags", "#广场舞队、女性",
        "--by", "wang",
    ).code == 0  # fmt: skip
    kept = grid(capsys, db_url, "register", "-1002", "--area", "东湖社区/3网格", "--by", "wang")
    assert "人群标签：女性、广场舞队" in kept.out and "沿用原来的标签" in kept.out
    assert "原来登记在 东湖社区/3网格/5幢" in kept.out
    assert store.get_chat("telegram", "-1002").area_id == 2  # type: ignore[union-attr]
    cleared = grid(
        capsys, db_url, "register", "-1002", "--area", "#2", "--tags", "", "--by", "wang"
    )
    assert "人群标签：（无标签）" in cleared.out
    assert store.get_chat("telegram", "-1002").tags == ()  # type: ignore[union-attr]

    # An admin may register anywhere; a leader only in their own part of the tree.
    assert grid(capsys, db_url, "register", "-1003", "--area", "#6", "--by", "boss").code == 0
    before = store.get_chat("telegram", "-1001")
    for argv, code, message in (
        (("-1001", "--area", "西湖社区/3网格", "--by", "wang"), 1, "（wang） 不是 西湖社区/3网格"),
        (("-1001", "--area", "东湖社区/1网格", "--by", "wang"), 1, "不能把群登记到那里"),
        (("-1001", "--area", "#2", "--by", "li"), 1, "李网格长（li） 不是 东湖社区/3网格"),
        (("-1001", "--area", "#2", "--by", "nobody"), 1, "没有用户“nobody”"),
        (("-1001", "--area", "北湖社区", "--by", "wang"), 1, "没有找到区域“北湖社区”"),
        (("-1001", "--area", "3网格", "--by", "wang"), 2, "有 2 处"),
        (("-1001", "--area", "#2", "--tags", "!!!", "--by", "wang"), 2, "标签“!!!”不能用"),
    ):  # fmt: skip
        refused = grid(capsys, db_url, "register", *argv)
        assert (refused.code, refused.out) == (code, "")
        assert message in refused.err
    assert store.get_chat("telegram", "-1001") == before

    store.upsert_chat("telegram", "5001", "private", "王阿姨")
    private = grid(capsys, db_url, "register", "5001", "--area", "#2", "--by", "wang")
    assert private.code == 1 and "这个群不能登记" in private.err

    store.set_campaigns_opt_out("telegram", "-1003", True, "test")
    listed = grid(capsys, db_url, "groups")
    assert listed.code == 0
    assert listed.lines == [
        "-1001  幸福村3组网格群  东湖社区/3网格  老年人、新居民  接收推送",
        "-1002  （无群名）  东湖社区/3网格  （无标签）  接收推送",
        "-1003  （无群名）  西湖社区/3网格  （无标签）  已退订推送",
    ]
    assert "共 3 个已登记的群，1 个已退订推送" in listed.err
    opted = grid(capsys, db_url, "register", "-1003", "--area", "#6", "--by", "li")
    assert "已退订活动推送" in opted.out

    west = grid(capsys, db_url, "groups", "--area", "西湖社区")
    assert west.lines == ["-1003  （无群名）  西湖社区/3网格  （无标签）  已退订推送"]
    records = json.loads(grid(capsys, db_url, "groups", "--area", "#1", "--json").out)
    assert [r["telegram_chat_id"] for r in records] == ["-1001", "-1002"]
    assert records[0]["tags"] == ["elderly", "new_residents"]
    assert records[0]["tag_names"] == ["老年人", "新居民"]
    assert records[0]["campaigns_opt_out"] is False
    nowhere = grid(capsys, db_url, "groups", "--area", "北湖社区")
    assert nowhere.code == 1 and "没有找到区域" in nowhere.err


def test_store_down_or_not_set_up_is_one_clear_line(capsys, tmp_path: Path):
    down = grid(capsys, "postgresql://postgres@127.0.0.1:1/none", "areas", retry=0.2)
    assert down.code == 1 and down.out == ""
    assert "antifraud grid: 连不上数据库" in down.err

    bare = tmp_path / "bare.db"
    sa.create_engine(f"sqlite:///{bare}").connect().close()  # a file without the schema
    for argv in (("areas",), ("groups",), ("add-area", "community", "东湖社区")):
        result = grid(capsys, f"sqlite:///{bare}", *argv)
        assert result.code == 1
        assert "数据库里还没有表（先运行 antifraud db upgrade）" in result.err
