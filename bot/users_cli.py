"""``antifraud users``: the dashboard's staff accounts, from the command line.

This is how the first administrator is made (``antifraud users add admin --role admin``) and how
an administrator who is locked out gets back in. ``add`` creates an account with its password
(and, for a grid leader, the areas they lead) in one transaction, so a refused password leaves
no account behind; ``passwd``, ``disable``, ``enable`` and ``role`` change one, each audited with
the actor ``cli``; ``list`` shows them all, never a hash. A password is read from standard input
with ``--password-stdin`` (its first line), else asked twice on the terminal; it is never an
argument, which would put it in the shell's history and the process list.

Exit codes as ``antifraud grid``: 0 done; 1 it could not be done (unknown user, the database);
2 the command cannot be understood (a bad username, a weak password, no way to ask for one).
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.dashboard.labels import ROLE_NAMES
from bot.dashboard.passwords import WeakPassword, hash_password
from bot.grid_cli import (
    DISPLAY_NAME_MAX_CHARS,
    CliError,
    dump,
    guarded,
    labels_of,
    person,
    resolve_area,
)
from bot.settings import Settings
from bot.store.models import USER_ROLES, AreaLeader
from bot.store.repo import Store, UserView

ACTOR = "cli"
PROG = "antifraud users"
_USERNAME = re.compile(r"[A-Za-z0-9._-]{3,64}")


# --------------------------------------------------------------------------- the parser


def add_parser(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser(
        "users",
        help="dashboard accounts: add, passwords, disable/enable, roles",
        description="Passwords are read from standard input (--password-stdin) or the terminal.",
    )
    verbs = users.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="create an account and set its password")
    add.add_argument("username", help="3 to 64 letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, choices=USER_ROLES)
    add.add_argument("--name", help="display name, e.g. 王网格长")
    add.add_argument("--telegram-id", type=int, help="their Telegram user id (linked)")
    add.add_argument(
        "--area",
        action="append",
        default=[],
        metavar="PATH_OR_ID",
        help="an area a grid leader leads (path or id; repeat for more)",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password's line")

    passwd = verbs.add_parser("passwd", help="set a new password (signs the user out)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password's line")

    listing = verbs.add_parser("list", help="every account, with role, state and areas")
    listing.add_argument("--json", action="store_true")

    for verb, text in (("disable", "disable an account (signs it out)"), ("enable", "enable")):
        verbs.add_parser(verb, help=text).add_argument("username")

    role = verbs.add_parser("role", help="change an account's role (signs it out)")
    role.add_argument("username")
    role.add_argument("role", choices=USER_ROLES)


def run(args: argparse.Namespace, settings: Settings, store: Store | None = None) -> int:
    verbs: dict[str, Callable[[argparse.Namespace, Store], int]] = {
        "add": _add,
        "passwd": _passwd,
        "list": _list,
        "disable": _disable,
        "enable": _enable,
        "role": _role,
    }
    verb = verbs[args.verb]
    return guarded(PROG, settings, lambda s: verb(args, s), store=store)


# --------------------------------------------------------------------------- shared


def read_password(from_stdin: bool) -> str:
    """The new password: standard input's first line, or typed twice on a terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise CliError("标准输入的第一行是空的：没有读到密码", 2)
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "标准输入不是终端，没法问密码：用 --password-stdin 从标准输入读（第一行）", 2
        )
    first = getpass.getpass("新密码：")
    if not first:
        raise CliError("没有输入密码", 2)
    if getpass.getpass("再输一次：") != first:
        raise CliError("两次输入的密码不一样，什么都没有改", 2)
    return first


def _hash(password: str, username: str) -> str:
    try:
        return hash_password(password, username)
    except WeakPassword as exc:
        raise CliError(f"密码不符合要求：{exc}，什么都没有改", 2) from exc


def _existing(store: Store, username: str) -> UserView:
    user = store.user_by_name(username.strip())
    if user is None:
        raise CliError(f"没有用户“{username.strip()}”（antifraud users list 可查看）")
    return user


def _led_areas(store: Store) -> dict[int, list[int]]:
    """User id -> the areas they lead directly, in id order."""

    def work(session: Session) -> dict[int, list[int]]:
        rows = session.execute(
            sa.select(AreaLeader.user_id, AreaLeader.area_id).order_by(AreaLeader.area_id)
        ).tuples()
        led: dict[int, list[int]] = {}
        for user_id, area_id in rows:
            led.setdefault(user_id, []).append(area_id)
        return led

    return store.run_in(work, write=False)


def _role_name(role: str) -> str:
    return f"{ROLE_NAMES.get(role, role)}（{role}）"


# --------------------------------------------------------------------------- add


def _add(args: argparse.Namespace, store: Store) -> int:
    username = args.username.strip()
    if not _USERNAME.fullmatch(username):
        raise CliError("用户名要 3 到 64 个字符，只能用字母、数字和 . _ -", 2)
    name = " ".join(args.name.split()) if args.name is not None else None
    if name is not None and (not name or len(name) > DISPLAY_NAME_MAX_CHARS):
        raise CliError(f"显示名要 1 到 {DISPLAY_NAME_MAX_CHARS} 个字", 2)
    if args.telegram_id is not None and args.telegram_id <= 0:
        raise CliError("Telegram 用户 id 是正整数（群的 id 才是负数）", 2)
    if args.area and args.role != "grid_leader":
        raise CliError("--area 只给网格长（--role grid_leader）用", 2)
    if store.user_by_name(username) is not None:
        raise CliError(f"已经有用户“{username}”了，没有新建（改密码用 antifraud users passwd）")
    areas = {area.id: area for area in (resolve_area(store, text) for text in args.area)}
    password_hash = _hash(read_password(args.password_stdin), username)

    try:
        user = store.add_account(
            username,
            args.role,
            password_hash,
            ACTOR,
            display_name=name,
            telegram_user_id=args.telegram_id,
            lead_areas=areas,
        )
    except IntegrityError as exc:  # the name or the Telegram id was taken, maybe meanwhile
        raise CliError(
            f"没有新建：用户名“{username}”或 Telegram 账号 {args.telegram_id} 已经有人用了"
        ) from exc
    print(f"已新建{ROLE_NAMES[user.role]}账号 #{user.id} {person(user)}，密码已设置")
    for area_id in areas:
        print(f"  负责区域：{store.area_label(area_id)}（#{area_id}）")
    if user.role == "grid_leader" and not areas:
        print(f"  还没有负责的区域：antifraud grid add-leader {username} --area 区域")
    if user.role == "grid_leader" and user.telegram_user_id is None:
        print("  还没有关联 Telegram 账号：在群里用 /grid 需要它（grid add-leader --telegram-id）")
    return 0


# --------------------------------------------------------------------------- the others


def _passwd(args: argparse.Namespace, store: Store) -> int:
    user = _existing(store, args.username)
    password_hash = _hash(read_password(args.password_stdin), user.username)
    store.set_password_hash(user.id, password_hash, ACTOR)
    print(f"已为 {person(user)} 设置新密码，该账号已登录的会话都已退出")
    if not user.active:
        print(f"  这个账号是停用的：antifraud users enable {user.username} 后才能登录")
    return 0


def _record(user: UserView, areas: list[int], labels: dict[int, str]) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "active": user.active,
        "has_password": user.has_password,
        "telegram_user_id": user.telegram_user_id,
        "created_at": user.created_at.isoformat(),
        "areas": [{"id": a, "path": labels.get(a, f"#{a}")} for a in areas],
    }


def _list(args: argparse.Namespace, store: Store) -> int:
    users = store.users()
    led = _led_areas(store)
    labels = labels_of(store.areas())
    records = [_record(u, led.get(u.id, []), labels) for u in users]
    if args.json:
        dump(records)
        return 0
    if not records:
        print("还没有账号。先建管理员：antifraud users add admin --role admin")
        return 0
    for record in records:
        state = "启用" if record["active"] else "停用"
        password = "有密码" if record["has_password"] else "未设密码"
        telegram = record["telegram_user_id"] or "-"
        areas = "、".join(a["path"] for a in record["areas"]) or "-"
        name = record["display_name"] or "-"
        print(
            f"#{record['id']} {record['username']}  {name}  {ROLE_NAMES[record['role']]}  "
            f"{state}  {password}  Telegram：{telegram}  负责区域：{areas}"
        )
    active = sum(1 for r in records if r["active"])
    print(f"{len(records)} 个账号，{active} 个启用", file=sys.stderr)
    return 0


def _disable(args: argparse.Namespace, store: Store) -> int:
    user = _existing(store, args.username)
    if not user.active:
        print(f"{person(user)} 本来就是停用的，没有改")
        return 0
    store.set_user_active(user.id, False, ACTOR)
    print(f"已停用 {person(user)}，该账号已登录的会话都已退出")
    if user.role == "admin" and not any(u.active and u.role == "admin" for u in store.users()):
        print("  注意：现在没有启用的管理员了（antifraud users enable 或 add 可恢复）")
    return 0


def _enable(args: argparse.Namespace, store: Store) -> int:
    user = _existing(store, args.username)
    if user.active:
        print(f"{person(user)} 本来就是启用的，没有改")
        return 0
    user = store.set_user_active(user.id, True, ACTOR)
    print(f"已启用 {person(user)}")
    if not user.has_password:
        print(f"  还没有密码，登录不了：antifraud users passwd {user.username}")
    return 0


def _role(args: argparse.Namespace, store: Store) -> int:
    user = _existing(store, args.username)
    if user.role == args.role:
        print(f"{person(user)} 本来就是{_role_name(user.role)}，没有改")
        return 0
    store.set_user_role(user.id, args.role, ACTOR)
    print(
        f"{person(user)}：{_role_name(user.role)} → {_role_name(args.role)}，"
        "该账号已登录的会话都已退出"
    )
    if user.role == "grid_leader" and _led_areas(store).get(user.id):
        print("  原来负责的区域仍在该账号名下；注意 Telegram 里只认 grid_leader 和 admin 为网格长")
    return 0
