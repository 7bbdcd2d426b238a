"""``antifraud grid``: set up the community → grid → building tree, its leaders and its groups.

A newcomer sets up their grid with it before the dashboard exists: ``areas`` prints the tree,
``add-area`` and ``add-leader`` build it, ``groups`` lists the registered groups and
``register`` registers a group as ``/grid`` does in Telegram (only by a leader of that area or an
admin). An area is named by its path (``东湖社区/3网格``; a unique name alone will do) or its id
(``12`` or ``#12``). Text for staff is Chinese; ``--json`` gives the same as JSON.

Exit codes: 0 done; 1 it could not be done (unknown area or user, not allowed, the database
unreachable); 2 the command cannot be understood (a bad name or tag, an ambiguous path).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from bot.settings import Settings
from bot.store.errors import NotFound, StoreUnavailable
from bot.store.models import AreaLeader, Chat, User
from bot.store.repo import AreaView, ChatView, Store, UserView
from bot.store.rows import user_view
from campaigns.audience import ALL, TagError, name_of, parse_tag

CHANNEL = "telegram"
LEVEL_NAMES = {"community": "社区", "grid": "网格", "building": "楼栋"}
# The level an area's parent has (a community has none).
PARENT_LEVEL = {"community": None, "grid": "community", "building": "grid"}
NAME_MAX_CHARS = 128  # areas.name
USERNAME_MAX_CHARS = 64  # users.username
DISPLAY_NAME_MAX_CHARS = 128  # users.display_name
TITLE_MAX_CHARS = 255  # chats.title
_AREA_ID = re.compile(r"#?(\d{1,12})")
_TAG_SPLIT = re.compile(r"[,，、;；\s]+")
_USERNAME = re.compile(r"\S+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CliError(Exception):
    """What a verb could not do, said for staff; ``code`` is the exit code (1 or 2)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------- shared look-ups


def labels_of(areas: Iterable[AreaView]) -> dict[int, str]:
    """Each area's path ("东湖社区/3网格/5幢"), from one list of every area."""
    by_id = {a.id: a for a in areas}
    labels: dict[int, str] = {}

    def label(area_id: int, depth: int = 0) -> str:
        if area_id in labels:
            return labels[area_id]
        area = by_id[area_id]
        if area.parent_id is None or area.parent_id not in by_id or depth > 16:
            text = area.name
        else:
            text = label(area.parent_id, depth + 1) + "/" + area.name
        labels[area_id] = text
        return text

    for area_id in by_id:
        label(area_id)
    return labels


def resolve_area(store: Store, text: str) -> AreaView:
    """The one area ``text`` names: an id (``12``, ``#12``), a path, or a unique name."""
    wanted = text.strip()
    if not wanted:
        raise CliError("区域不能为空：写路径（如 东湖社区/3网格）或编号", 2)
    areas = store.areas()
    match = _AREA_ID.fullmatch(wanted)
    if match:
        area_id = int(match.group(1))
        for area in areas:
            if area.id == area_id:
                return area
        if wanted.startswith("#"):
            raise CliError(f"没有编号为 #{area_id} 的区域（antifraud grid areas 可查看）")
    found = store.find_area(wanted)
    if not found:
        raise CliError(f"没有找到区域“{wanted}”（antifraud grid areas 可查看全部区域）")
    if len(found) > 1:
        labels = labels_of(areas)
        listed = "、".join(f"{labels[a.id]}（#{a.id}）" for a in found)
        raise CliError(f"“{wanted}”有 {len(found)} 处：{listed}。请写完整路径或编号", 2)
    return found[0]


def user_by_name(store: Store, username: str) -> UserView | None:
    """The staff account with this username (active or not)."""

    def work(session: Session) -> UserView | None:
        query = sa.select(User).where(User.username == username)
        row = session.execute(query).scalar_one_or_none()
        return user_view(row) if row is not None else None

    return store.run_in(work, write=False)


def acting_user(store: Store, username: str) -> UserView:
    """The active account ``--by`` names, or a ``CliError``."""
    user = user_by_name(store, username.strip())
    if user is None:
        raise CliError(f"没有用户“{username.strip()}”")
    if not user.active:
        raise CliError(f"用户“{user.username}”已停用")
    return user


def person(user: UserView) -> str:
    """How staff are named in output: 王网格长（lead1）, or the username alone."""
    return f"{user.display_name}（{user.username}）" if user.display_name else user.username


def parse_tags(text: str) -> tuple[list[str], list[str]]:
    """Tags as typed ("老年人,新居民 #广场舞队") → (codes, notes for the user)."""
    tags: list[str] = []
    notes: list[str] = []
    for word in (w for w in _TAG_SPLIT.split(text) if w):
        try:
            tag = parse_tag(word)
        except TagError as exc:
            raise CliError(f"{exc}，什么都没有改", 2) from exc
        if tag == ALL:
            notes.append("“全部”不用登记：发给全体的活动会发到区域里的每个群")
        elif tag not in tags:
            tags.append(tag)
    return tags, notes


def tag_names(tags: Iterable[str]) -> str:
    names = [name_of(t) for t in tags]
    return "、".join(names) if names else "（无标签）"


def _database_problem(exc: SQLAlchemyError) -> str:
    """The driver's first line, never the statement or its parameters."""
    orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else None
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "no such table" in first or "does not exist" in first:
        return f"数据库里还没有表（先运行 antifraud db upgrade）：{first}"
    return f"数据库出错：{type(orig or exc).__name__}: {first}"


def guarded(
    prog: str, settings: Settings, work: Callable[[Store], int], *, store: Store | None = None
) -> int:
    """Run ``work`` on the store; every failure a line on standard error, never a traceback."""
    own = store is None
    try:
        store = store or Store.from_settings(settings)
    except (SQLAlchemyError, ValueError, OSError) as exc:
        print(f"{prog}: 打不开数据库 {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        return work(store)
    except CliError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return exc.code
    except StoreUnavailable as exc:
        print(f"{prog}: 连不上数据库：{exc}", file=sys.stderr)
        return 1
    except (NotFound, PermissionError) as exc:  # e.g. an area removed meanwhile
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"{prog}: {_database_problem(exc)}", file=sys.stderr)
        return 1
    finally:
        if own:
            store.close()


def dump(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1, default=str))


# --------------------------------------------------------------------------- the parser


def add_parser(sub: argparse._SubParsersAction) -> None:
    grid = sub.add_parser(
        "grid",
        help="the grid: areas, leaders and registered groups",
        description="Areas are named by path (东湖社区/3网格), a unique name, or id (12, #12).",
    )
    verbs = grid.add_subparsers(dest="verb", required=True)
    areas = verbs.add_parser("areas", help="the tree with ids, leaders and group counts")
    areas.add_argument("--json", action="store_true")

    add_area = verbs.add_parser("add-area", help="add a community, a grid or a building")
    add_area.add_argument("level", choices=tuple(LEVEL_NAMES), help="community | grid | building")
    add_area.add_argument("name", help="its name, e.g. 东湖社区, 3网格, 5幢")
    add_area.add_argument(
        "--in", dest="parent", metavar="PARENT", help="the community (of a grid) or grid path"
    )

    leader = verbs.add_parser(
        "add-leader", help="make a user (created if missing) a leader of an area"
    )
    leader.add_argument("username")
    leader.add_argument("--area", required=True, help="path or id of the area they lead")
    leader.add_argument("--telegram-id", type=int, help="their Telegram user id (linked)")
    leader.add_argument("--name", help="display name, e.g. 王网格长")

    groups = verbs.add_parser("groups", help="registered groups, with area, tags, opt-out")
    groups.add_argument("--area", help="only this area and what is below it")
    groups.add_argument("--json", action="store_true")

    register = verbs.add_parser(
        "register", help="register a group to an area with audience tags (like /grid)"
    )
    register.add_argument("chat_id", type=int, help="the group's Telegram chat id, e.g. -1001234")
    register.add_argument("--area", required=True, help="path or id of the area")
    register.add_argument(
        "--tags",
        help="audiences, e.g. 老年人,新居民 (custom tags allowed); omitted: keep the group's; "
        "'' clears them",
    )
    register.add_argument(
        "--by", required=True, help="username of a leader of that area (or an admin)"
    )
    register.add_argument("--title", help="the group's title, if the bot has not seen it")


def run(args: argparse.Namespace, settings: Settings, store: Store | None = None) -> int:
    verbs: dict[str, Callable[[argparse.Namespace, Store], int]] = {
        "areas": _areas,
        "add-area": _add_area,
        "add-leader": _add_leader,
        "groups": _groups,
        "register": _register,
    }
    verb = verbs[args.verb]
    return guarded("antifraud grid", settings, lambda s: verb(args, s), store=store)


# --------------------------------------------------------------------------- areas


@dataclass(frozen=True)
class _TreeFacts:
    leaders: dict[int, list[UserView]]  # area -> its own (not inherited) active leaders
    groups: dict[int, int]  # area -> registered groups directly in it


def _tree_facts(store: Store) -> _TreeFacts:
    def work(session: Session) -> _TreeFacts:
        leaders: dict[int, list[UserView]] = {}
        rows = session.execute(
            sa.select(AreaLeader.area_id, User)
            .join(User, User.id == AreaLeader.user_id)
            .where(User.active.is_(True))
            .order_by(AreaLeader.area_id, User.id)
        ).all()
        for area_id, user in rows:
            leaders.setdefault(area_id, []).append(user_view(user))
        counts = session.execute(
            sa.select(Chat.area_id, sa.func.count())
            .where(Chat.kind == "group", Chat.area_id.is_not(None))
            .group_by(Chat.area_id)
        ).all()
        return _TreeFacts(leaders, {int(a): int(n) for a, n in counts})

    return store.run_in(work, write=False)


def _areas(args: argparse.Namespace, store: Store) -> int:
    areas = store.areas()
    facts = _tree_facts(store)
    labels = labels_of(areas)
    depth: dict[int, int] = {}
    totals = dict.fromkeys((a.id for a in areas), 0)
    for area in areas:  # parents come before children
        depth[area.id] = depth.get(area.parent_id, -1) + 1 if area.parent_id else 0
    for area in reversed(areas):  # children before parents: add each subtree up
        totals[area.id] += facts.groups.get(area.id, 0)
        if area.parent_id in totals:
            totals[area.parent_id] += totals[area.id]
    if args.json:
        dump(
            [
                {
                    "id": a.id,
                    "parent_id": a.parent_id,
                    "level": a.level,
                    "name": a.name,
                    "path": labels[a.id],
                    "leaders": [
                        {
                            "username": u.username,
                            "display_name": u.display_name,
                            "telegram_user_id": u.telegram_user_id,
                        }
                        for u in facts.leaders.get(a.id, [])
                    ],
                    "groups": facts.groups.get(a.id, 0),
                    "groups_total": totals[a.id],
                }
                for a in areas
            ]
        )
        return 0
    if not areas:
        print("还没有区域。先添加社区：antifraud grid add-area community 东湖社区")
        return 0
    for area in areas:
        own = facts.groups.get(area.id, 0)
        groups = f"群：{own}" + (f"，含下级共 {totals[area.id]}" if totals[area.id] != own else "")
        leaders = "、".join(person(u) for u in facts.leaders.get(area.id, [])) or "-"
        print(
            f"{'  ' * depth[area.id]}#{area.id} {area.name}（{LEVEL_NAMES[area.level]}）"
            f"  网格长：{leaders}  {groups}"
        )
    total_groups = sum(facts.groups.values())
    print(f"{len(areas)} 个区域，{total_groups} 个已登记的群", file=sys.stderr)
    return 0


def _area_name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise CliError("名称不能为空", 2)
    if "/" in name or "／" in name:
        raise CliError(f"名称“{name}”里不能有 /（/ 用来分隔路径，如 东湖社区/3网格）", 2)
    if _CONTROL.search(name):
        raise CliError("名称里有控制字符", 2)
    if len(name) > NAME_MAX_CHARS:
        raise CliError(f"名称太长：{len(name)} 个字，最多 {NAME_MAX_CHARS} 个", 2)
    if _AREA_ID.fullmatch(name):
        raise CliError(f"名称“{name}”只有数字，会和区域编号混淆；请写成如 {name}网格", 2)
    return name


def _add_area(args: argparse.Namespace, store: Store) -> int:
    name = _area_name(args.name)
    wanted_parent = PARENT_LEVEL[args.level]
    level = LEVEL_NAMES[args.level]
    parent_id: int | None = None
    if wanted_parent is None:
        if args.parent:
            raise CliError("社区是最上一级，不用 --in", 2)
    else:
        if not args.parent:
            example = "东湖社区" if wanted_parent == "community" else "东湖社区/3网格"
            raise CliError(f"{level}要写在哪个{LEVEL_NAMES[wanted_parent]}里：--in {example}", 2)
        parent = resolve_area(store, args.parent)
        if parent.level != wanted_parent:
            raise CliError(
                f"{level}只能加在{LEVEL_NAMES[wanted_parent]}里，"
                f"“{store.area_label(parent.id)}”是{LEVEL_NAMES[parent.level]}",
                2,
            )
        parent_id = parent.id
    for sibling in store.areas():
        if sibling.parent_id == parent_id and sibling.name == name:
            where = f"“{store.area_label(parent_id)}”里" if parent_id else ""
            raise CliError(f"{where}已经有“{name}”了（#{sibling.id}），没有添加")
    try:
        area = store.add_area(args.level, name, parent_id)
    except ValueError as exc:
        raise CliError(f"没有添加：{exc}") from exc
    print(f"已添加{level} #{area.id} {store.area_label(area.id)}")
    return 0


# --------------------------------------------------------------------------- leaders


def _user_with_telegram(session: Session, telegram_user_id: int) -> User | None:
    return session.execute(
        sa.select(User).where(User.telegram_user_id == telegram_user_id)
    ).scalar_one_or_none()


def _link_user(
    store: Store, user: UserView, telegram_user_id: int | None, name: str | None
) -> tuple[UserView, list[str]]:
    """Link a Telegram id and set a display name on an existing account; what changed."""

    def work(session: Session) -> tuple[UserView, list[str]]:
        row = session.get(User, user.id)
        if row is None:
            raise CliError(f"没有用户“{user.username}”")
        changes: list[str] = []
        if telegram_user_id is not None and row.telegram_user_id != telegram_user_id:
            other = _user_with_telegram(session, telegram_user_id)
            if other is not None:
                raise CliError(
                    f"Telegram 账号 {telegram_user_id} 已经属于用户“{other.username}”，没有改"
                )
            old = row.telegram_user_id
            row.telegram_user_id = telegram_user_id
            changes.append(
                f"Telegram 账号 {old} → {telegram_user_id}"
                if old is not None
                else f"已关联 Telegram 账号 {telegram_user_id}"
            )
        if name is not None and row.display_name != name:
            row.display_name = name
            changes.append(f"显示名改为 {name}")
        session.flush()
        if changes:
            store._audit(
                session,
                "cli",
                "user.update",
                "user",
                row.id,
                {
                    "telegram_linked": telegram_user_id is not None,
                    "renamed": name is not None,
                },
            )
        return user_view(row), changes

    try:
        return store.run_in(work, write=True)
    except IntegrityError as exc:  # another process took the Telegram id meanwhile
        raise CliError(f"Telegram 账号 {telegram_user_id} 已经属于另一个用户，没有改") from exc


def _add_leader(args: argparse.Namespace, store: Store) -> int:
    username = args.username.strip()
    if not _USERNAME.fullmatch(username) or len(username) > USERNAME_MAX_CHARS:
        raise CliError(f"用户名要 1 到 {USERNAME_MAX_CHARS} 个字符，不能有空格", 2)
    name = " ".join(args.name.split()) if args.name is not None else None
    if name is not None and (not name or len(name) > DISPLAY_NAME_MAX_CHARS):
        raise CliError(f"显示名要 1 到 {DISPLAY_NAME_MAX_CHARS} 个字", 2)
    if args.telegram_id is not None and args.telegram_id <= 0:
        raise CliError("Telegram 用户 id 是正整数（群的 id 才是负数）", 2)
    area = resolve_area(store, args.area)
    label = store.area_label(area.id)
    user = user_by_name(store, username)
    notes: list[str] = []
    if user is None:
        if args.telegram_id is not None:
            holder = store.user_by_telegram(args.telegram_id)
            if holder is not None:
                raise CliError(
                    f"Telegram 账号 {args.telegram_id} 已经属于用户“{holder.username}”，没有改"
                )
        try:
            user = store.add_user(username, "grid_leader", name, args.telegram_id)
        except ValueError as exc:
            raise CliError(f"没有建账号：{exc}") from exc
        notes.append(f"已新建网格长账号 {username}")
        if args.telegram_id is None:
            notes.append("还没有关联 Telegram 账号：加上 --telegram-id 才能在群里用 /grid")
    else:
        if not user.active:
            raise CliError(f"用户“{username}”已停用，没有改")
        user, changes = _link_user(store, user, args.telegram_id, name)
        notes.extend(changes)
        if user.role == "staff":
            notes.append(
                f"注意：{username} 的角色是 staff，Telegram 里只认 grid_leader 和 admin 为网格长"
            )
    try:
        store.add_leader(area.id, user.id)
    except NotFound as exc:
        raise CliError(f"没有改：{exc}") from exc
    store.audit("cli", "leader.add", "area", area.id, {"user_id": user.id})
    print(f"{person(user)}现在是 {label}（#{area.id}）的网格长")
    for note in notes:
        print(f"  {note}")
    return 0


# --------------------------------------------------------------------------- groups


def _group_record(chat: ChatView, labels: dict[int, str]) -> dict[str, Any]:
    return {
        "id": chat.id,
        "telegram_chat_id": chat.external_id,
        "title": chat.title,
        "area_id": chat.area_id,
        "area": labels.get(chat.area_id) if chat.area_id is not None else None,
        "tags": list(chat.tags),
        "tag_names": [name_of(t) for t in chat.tags],
        "campaigns_opt_out": chat.campaigns_opt_out,
        "registered_at": chat.registered_at.isoformat() if chat.registered_at else None,
    }


def _group_line(record: dict[str, Any]) -> str:
    names = "、".join(record["tag_names"]) or "（无标签）"
    pushes = "已退订推送" if record["campaigns_opt_out"] else "接收推送"
    title = record["title"] or "（无群名）"
    return f"{record['telegram_chat_id']}  {title}  {record['area']}  {names}  {pushes}"


def _groups(args: argparse.Namespace, store: Store) -> int:
    areas = store.areas()
    labels = labels_of(areas)
    if args.area is not None:
        roots = [resolve_area(store, args.area)]
    else:
        roots = [a for a in areas if a.parent_id is None]
    chats: dict[int, ChatView] = {}
    for root in roots:
        for chat in store.groups_in(root.id):
            chats[chat.id] = chat
    records = sorted(
        (_group_record(c, labels) for c in chats.values()),
        key=lambda r: (r["area"] or "", r["id"]),  # by place, then as registered
    )
    if args.json:
        dump(records)
        return 0
    for record in records:
        print(_group_line(record))
    where = f"在 {labels[roots[0].id]}" if args.area is not None else "共"
    opted_out = sum(1 for r in records if r["campaigns_opt_out"])
    print(f"{where} {len(records)} 个已登记的群，{opted_out} 个已退订推送", file=sys.stderr)
    return 0


def _register(args: argparse.Namespace, store: Store) -> int:
    user = acting_user(store, args.by)
    area = resolve_area(store, args.area)
    external_id = str(args.chat_id)
    title = " ".join(args.title.split()) if args.title else None
    if title is not None and len(title) > TITLE_MAX_CHARS:
        raise CliError(f"群名太长，最多 {TITLE_MAX_CHARS} 个字", 2)
    before = store.get_chat(CHANNEL, external_id)
    notes: list[str] = []
    if args.tags is None:
        tags = list(before.tags) if before is not None else []
        if before is not None and before.tags:
            notes.append("没写 --tags：沿用原来的标签")
    else:
        tags, notes = parse_tags(args.tags)
    label = store.area_label(area.id)
    try:
        chat = store.register_group(CHANNEL, external_id, area.id, tags, user.id, title)
    except PermissionError as exc:
        raise CliError(
            f"{person(user)} 不是 {label} 的网格长，不能把群登记到那里，什么都没有改"
        ) from exc
    except ValueError as exc:
        raise CliError(f"这个群不能登记：{exc}") from exc
    print(f"群 {external_id}（{chat.title or '无群名'}）已登记到：{label}（#{area.id}）")
    print(f"  人群标签：{tag_names(chat.tags)}")
    if before is not None and before.area_id is not None and before.area_id != area.id:
        notes.append(f"原来登记在 {store.area_label(before.area_id)}")
    if chat.campaigns_opt_out:
        notes.append("这个群已退订活动推送（群管理员在群里发 /campaigns_on 恢复）")
    for note in notes:
        print(f"  {note}")
    return 0
