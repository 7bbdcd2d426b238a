"""``antifraud users`` on real stores (SQLite and PostgreSQL): accounts made with their password
in one go (or not at all), passwords, disabling, roles, the listing, and the audit of each."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot import cli, users_cli
from bot.dashboard import passwords
from bot.settings import Settings
from bot.store import Store
from bot.store.models import AuditLog
from tests.store import conftest as databases

postgres_url = databases.postgres_url
sqlite_template = databases.sqlite_template
db_url = databases.db_url
store = databases.store

PASSWORD = "Lantern-Harbour-42"


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


class Terminal(io.StringIO):
    """Standard input that says it is a terminal (what ``getpass`` then reads is scripted)."""

    def isatty(self) -> bool:
        return True


def users(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    *argv: str,
    stdin: str | io.StringIO = "",
) -> Result:
    parser = argparse.ArgumentParser(prog="antifraud")
    users_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["users", *argv])
    settings = dataclasses.replace(Settings.from_env(), database_url=url, store_retry_seconds=5)
    monkeypatch.setattr(
        sys, "stdin", stdin if isinstance(stdin, io.StringIO) else io.StringIO(stdin)
    )
    capsys.readouterr()
    code = users_cli.run(args, settings)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Result(code, captured.out, captured.err)


def audit_rows(store: Store) -> list[tuple[str, str, str, int | None, dict]]:
    """The audit log but for logins (which the tests make to have sessions to end)."""

    def work(session):
        query = sa.select(AuditLog).where(AuditLog.action != "login").order_by(AuditLog.id)
        rows = session.execute(query).scalars()
        return [(r.actor, r.action, r.target_type, r.target_id, dict(r.details)) for r in rows]

    return store.run_in(work, write=False)


def password_of(store: Store, username: str) -> str | None:
    record = store.login_record(username)
    assert record is not None
    return record.password_hash


def test_the_first_admin_is_made_with_a_password_from_stdin(capsys, monkeypatch, db_url, store):
    empty = users(capsys, monkeypatch, db_url, "list")
    assert (empty.code, empty.out) == (
        0,
        "还没有账号。先建管理员：antifraud users add admin --role admin\n",
    )

    made = users(
        capsys, monkeypatch, db_url, "add", "admin", "--role", "admin", "--password-stdin",
        stdin=PASSWORD + "\nnot read\n",
    )  # fmt: skip
    assert (made.code, made.lines) == (0, ["已新建管理员账号 #1 admin，密码已设置"])
    admin = store.user_by_name("admin")
    assert admin is not None and (admin.role, admin.active, admin.has_password) == (
        "admin",
        True,
        True,
    )
    assert passwords.verify(password_of(store, "admin"), PASSWORD)
    assert audit_rows(store) == [
        ("cli", "user.add", "user", admin.id, {"role": "admin", "telegram_linked": False})
    ]
    # A Windows line end is not part of the password.
    users(
        capsys, monkeypatch, db_url, "add", "ops", "--role", "staff", "--password-stdin",
        stdin=PASSWORD + "\r\n",
    )  # fmt: skip
    assert passwords.verify(password_of(store, "ops"), PASSWORD)


def test_a_grid_leader_is_made_leader_of_their_areas(capsys, monkeypatch, db_url, store):
    east = store.add_area("community", "东湖社区").id
    three = store.add_area("grid", "3网格", east).id
    one = store.add_area("grid", "1网格", east).id
    made = users(
        capsys, monkeypatch, db_url, "add", "wang.li", "--role", "grid_leader", "--name",
        " 王  网格长 ", "--telegram-id", "7001", "--area", "东湖社区/3网格", "--area", f"#{one}",
        "--area", "3网格", "--password-stdin", stdin=PASSWORD,
    )  # fmt: skip
    assert made.code == 0, made.err
    assert made.lines == [
        "已新建网格长账号 #1 王 网格长（wang.li），密码已设置",
        f"  负责区域：东湖社区/3网格（#{three}）",
        f"  负责区域：东湖社区/1网格（#{one}）",
    ]
    user = store.user_by_telegram(7001)
    assert user is not None and user.username == "wang.li"
    assert (
        store.leads(user.id, three)
        and store.leads(user.id, one)
        and not store.leads(user.id, east)
    )
    actions = [(a, t, i, d) for _, a, t, i, d in audit_rows(store)]
    assert actions == [
        ("user.add", "user", user.id, {"role": "grid_leader", "telegram_linked": True}),
        ("leader.add", "area", three, {"user_id": user.id}),
        ("leader.add", "area", one, {"user_id": user.id}),
    ]

    bare = users(
        capsys, monkeypatch, db_url, "add", "zhao", "--role", "grid_leader", "--password-stdin",
        stdin=PASSWORD,
    )  # fmt: skip
    assert bare.code == 0
    assert "还没有负责的区域" in bare.out and "还没有关联 Telegram 账号" in bare.out


@pytest.mark.parametrize(
    ("argv", "stdin", "code", "message"),
    [
        (("ab", "--role", "staff"), PASSWORD, 2, "用户名要 3 到 64 个字符"),
        (("has space", "--role", "staff"), PASSWORD, 2, "只能用字母、数字和 . _ -"),
        (("王五五", "--role", "staff"), PASSWORD, 2, "用户名要 3 到 64 个字符"),
        (("a" * 65, "--role", "staff"), PASSWORD, 2, "用户名要 3 到 64 个字符"),
        (("li", "--role", "admin"), PASSWORD, 2, "用户名"),
        (("lily", "--role", "staff"), "short\n", 2, "密码不符合要求：密码至少 10 个字符"),
        (("lily", "--role", "staff"), "lily-is-my-name\n", 2, "密码不能包含用户名"),
        (("lily", "--role", "staff"), "aaaaaaaaaaaa\n", 2, "至少用 4 个不同的字符"),
        (("lily", "--role", "staff"), "\n", 2, "没有读到密码"),
        (("lily", "--role", "staff"), "", 2, "没有读到密码"),
        (("lily", "--role", "staff", "--area", "东湖社区"), PASSWORD, 2, "--area 只给网格长"),
        (("lily", "--role", "grid_leader", "--area", "北湖社区"), PASSWORD, 1, "没有找到区域"),
        (("lily", "--role", "grid_leader", "--area", "#99"), PASSWORD, 1, "没有编号为 #99"),
        (("lily", "--role", "staff", "--telegram-id", "-5"), PASSWORD, 2, "正整数"),
        (("lily", "--role", "staff", "--name", "  "), PASSWORD, 2, "显示名要 1 到"),
        (("taken", "--role", "staff"), PASSWORD, 1, "已经有用户“taken”了"),
        (("lily", "--role", "staff", "--telegram-id", "9001"), PASSWORD, 1, "已经有人用了"),
    ],
)
def test_add_refuses_and_leaves_no_account_behind(
    capsys, monkeypatch, db_url, store, argv, stdin, code, message
):
    store.add_area("community", "东湖社区")
    store.add_user("taken", "staff", telegram_user_id=9001)
    result = users(capsys, monkeypatch, db_url, "add", *argv, "--password-stdin", stdin=stdin)
    assert (result.code, result.out) == (code, "")
    assert result.err.startswith("antifraud users: ") and message in result.err
    assert [u.username for u in store.users()] == ["taken"]
    assert audit_rows(store) == []


def test_a_password_is_asked_twice_on_a_terminal_and_never_guessed(
    capsys, monkeypatch, db_url, store
):
    typed: list[str] = []
    monkeypatch.setattr(users_cli.getpass, "getpass", lambda prompt: typed.pop(0))

    typed[:] = [PASSWORD, PASSWORD + "x"]
    differ = users(capsys, monkeypatch, db_url, "add", "lily", "--role", "staff", stdin=Terminal())
    assert (differ.code, "两次输入的密码不一样" in differ.err) == (2, True)
    typed[:] = [""]
    nothing = users(
        capsys, monkeypatch, db_url, "add", "lily", "--role", "staff", stdin=Terminal()
    )
    assert (nothing.code, "没有输入密码" in nothing.err) == (2, True)
    # Piped in without --password-stdin: refused, not read.
    piped = users(capsys, monkeypatch, db_url, "add", "lily", "--role", "staff", stdin=PASSWORD)
    assert piped.code == 2 and "标准输入不是终端" in piped.err and "--password-stdin" in piped.err
    assert store.users() == []

    typed[:] = [PASSWORD, PASSWORD]
    made = users(capsys, monkeypatch, db_url, "add", "lily", "--role", "staff", stdin=Terminal())
    assert made.code == 0 and typed == []
    assert passwords.verify(password_of(store, "lily"), PASSWORD)


def test_passwd_sets_a_new_password_and_ends_the_sessions(capsys, monkeypatch, db_url, store):
    user = store.add_user("lily", "staff")
    store.start_session(user.id, "token-1", "csrf-1", timedelta(hours=1))
    assert store.signed_in("token-1") is not None

    weak = users(capsys, monkeypatch, db_url, "passwd", "lily", "--password-stdin", stdin="x\n")
    assert weak.code == 2 and password_of(store, "lily") is None
    assert store.signed_in("token-1") is not None
    unknown = users(
        capsys, monkeypatch, db_url, "passwd", "nobody", "--password-stdin", stdin=PASSWORD
    )
    assert (unknown.code, unknown.err) == (
        1,
        "antifraud users: 没有用户“nobody”（antifraud users list 可查看）\n",
    )

    done = users(capsys, monkeypatch, db_url, "passwd", "lily", "--password-stdin", stdin=PASSWORD)
    assert (done.code, done.lines) == (0, ["已为 lily 设置新密码，该账号已登录的会话都已退出"])
    assert passwords.verify(password_of(store, "lily"), PASSWORD)
    assert store.signed_in("token-1") is None
    assert audit_rows(store) == [("cli", "user.password", "user", user.id, {})]

    store.set_user_active(user.id, False, "test")
    off = users(
        capsys, monkeypatch, db_url, "passwd", "lily", "--password-stdin", stdin=PASSWORD + "!"
    )
    assert off.code == 0 and "antifraud users enable lily" in off.out


def test_disable_enable_and_role(capsys, monkeypatch, db_url, store):
    admin = store.add_user("admin", "admin", "管理员甲")
    store.start_session(admin.id, "token-1", "csrf-1", timedelta(hours=1))

    off = users(capsys, monkeypatch, db_url, "disable", "admin")
    assert off.code == 0
    assert off.lines == [
        "已停用 管理员甲（admin），该账号已登录的会话都已退出",
        "  注意：现在没有启用的管理员了（antifraud users enable 或 add 可恢复）",
    ]
    assert store.user_by_name("admin").active is False  # type: ignore[union-attr]
    assert store.signed_in("token-1") is None
    again = users(capsys, monkeypatch, db_url, "disable", "admin")
    assert (again.code, again.lines) == (0, ["管理员甲（admin） 本来就是停用的，没有改"])

    on = users(capsys, monkeypatch, db_url, "enable", "admin")
    assert on.lines == [
        "已启用 管理员甲（admin）",
        "  还没有密码，登录不了：antifraud users passwd admin",
    ]
    assert store.user_by_name("admin").active is True  # type: ignore[union-attr]
    assert users(capsys, monkeypatch, db_url, "enable", "admin").lines == [
        "管理员甲（admin） 本来就是启用的，没有改"
    ]

    moved = users(capsys, monkeypatch, db_url, "role", "admin", "staff")
    assert moved.lines == [
        "管理员甲（admin）：管理员（admin） → 工作人员（staff），该账号已登录的会话都已退出"
    ]
    assert store.user_by_name("admin").role == "staff"  # type: ignore[union-attr]
    same = users(capsys, monkeypatch, db_url, "role", "admin", "staff")
    assert same.lines == ["管理员甲（admin） 本来就是工作人员（staff），没有改"]

    lead = store.add_user("wang", "grid_leader")
    store.add_leader(store.add_area("community", "东湖社区").id, lead.id)
    demoted = users(capsys, monkeypatch, db_url, "role", "wang", "staff")
    assert "原来负责的区域仍在该账号名下" in demoted.out

    assert [(a, i, d) for _, a, _, i, d in audit_rows(store)] == [
        ("user.disable", admin.id, {}),
        ("user.enable", admin.id, {}),
        ("user.role", admin.id, {"from": "admin", "to": "staff"}),
        ("user.role", lead.id, {"from": "grid_leader", "to": "staff"}),
    ]
    assert all(actor == "cli" for actor, *_ in audit_rows(store))
    for verb in (("disable", "nobody"), ("enable", "nobody"), ("role", "nobody", "admin")):
        assert users(capsys, monkeypatch, db_url, *verb).code == 1


def test_list_shows_every_account_and_never_a_hash(capsys, monkeypatch, db_url, store):
    east = store.add_area("community", "东湖社区").id
    three = store.add_area("grid", "3网格", east).id
    admin = store.add_user("admin", "admin")
    store.set_password_hash(admin.id, passwords.hash_password(PASSWORD), "test")
    lead = store.add_user("wang", "grid_leader", "王网格长", telegram_user_id=7001)
    store.add_leader(three, lead.id)
    store.add_leader(east, lead.id)
    store.set_user_active(lead.id, False, "test")
    hash_text = password_of(store, "admin")
    assert hash_text is not None

    listed = users(capsys, monkeypatch, db_url, "list")
    assert listed.lines == [
        "#1 admin  -  管理员  启用  有密码  Telegram：-  负责区域：-",
        "#2 wang  王网格长  网格长  停用  未设密码  Telegram：7001  "
        "负责区域：东湖社区、东湖社区/3网格",
    ]
    assert "2 个账号，1 个启用" in listed.err

    records = json.loads(users(capsys, monkeypatch, db_url, "list", "--json").out)
    assert [r["username"] for r in records] == ["admin", "wang"]
    assert records[1]["areas"] == [
        {"id": east, "path": "东湖社区"},
        {"id": three, "path": "东湖社区/3网格"},
    ]
    assert (records[0]["has_password"], records[1]["active"], records[1]["telegram_user_id"]) == (
        True,
        False,
        7001,
    )
    for output in (listed.out, listed.err, json.dumps(records)):
        assert hash_text not in output and "argon2" not in output


def test_the_command_is_registered_in_antifraud(capsys, monkeypatch, db_url, store):
    store.add_user("admin", "admin")
    monkeypatch.setenv("DATABASE_URL", db_url)
    capsys.readouterr()
    assert cli.main(["users", "list", "--json"]) == 0
    assert [r["username"] for r in json.loads(capsys.readouterr().out)] == ["admin"]
