"""The grid: the community → grid → building tree, who leads which part, and its groups.

A leader of an area leads everything below it. A group is registered to one place in the tree
by a leader of that place, with the audiences it reaches (``campaigns.audience``); it may opt
out of campaign pushes (warnings about scams posted in it still come).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.store.errors import NotFound
from bot.store.models import Area, AreaLeader, Chat, User
from bot.store.rows import area_view, chat_view, user_view
from bot.store.types import utcnow
from bot.store.views import AreaView, ChatView, UserView

MAX_DEPTH = 16  # the tree has three levels; this only stops a corrupted cycle


def _children(session: Session, parents: Iterable[int]) -> list[int]:
    ids = list(parents)
    if not ids:
        return []
    return list(session.execute(sa.select(Area.id).where(Area.parent_id.in_(ids))).scalars())


def subtree_ids(session: Session, area_id: int) -> list[int]:
    """``area_id`` and every area below it."""
    found = [area_id]
    frontier = [area_id]
    for _ in range(MAX_DEPTH):
        frontier = [a for a in _children(session, frontier) if a not in found]
        if not frontier:
            break
        found.extend(frontier)
    return found


def path_label(*names: str | None) -> str:
    """ "东湖社区/1网格/5幢" from the names of an area and those above it, nearest first (as a
    query joining an area to its parents gives them; missing levels are None)."""
    return "/".join(n for n in reversed(names) if n is not None)


def chain_ids(session: Session, area_id: int) -> list[int]:
    """``area_id`` and the areas above it, nearest first."""
    chain: list[int] = []
    current: int | None = area_id
    while current is not None and current not in chain and len(chain) < MAX_DEPTH:
        chain.append(current)
        current = session.execute(
            sa.select(Area.parent_id).where(Area.id == current)
        ).scalar_one_or_none()
    return chain


class Grid:
    """Mixed into ``Store``: needs ``run_in`` from ``Transactions``."""

    def areas(self) -> list[AreaView]:
        """Every area, parents before children."""

        def work(session: Session) -> list[AreaView]:
            rows = list(session.execute(sa.select(Area).order_by(Area.id)).scalars())
            by_parent: dict[int | None, list[Area]] = {}
            for area in rows:
                by_parent.setdefault(area.parent_id, []).append(area)
            ordered: list[AreaView] = []

            def walk(parent: int | None) -> None:
                for area in by_parent.get(parent, []):
                    ordered.append(area_view(area))
                    walk(area.id)

            walk(None)
            return ordered

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def area_path(self, area_id: int) -> list[AreaView]:
        """The area and those above it, from the community down: for names like 东湖社区/3网格."""

        def work(session: Session) -> list[AreaView]:
            ids = chain_ids(session, area_id)
            if not ids or session.get(Area, area_id) is None:
                raise NotFound(f"no area {area_id}")
            areas = {
                a.id: a for a in session.execute(sa.select(Area).where(Area.id.in_(ids))).scalars()
            }
            return [area_view(areas[i]) for i in reversed(ids) if i in areas]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def area_label(self, area_id: int) -> str:
        return "/".join(a.name for a in self.area_path(area_id))

    def area_subtree(self, area_id: int) -> list[int]:
        return self.run_in(lambda s: subtree_ids(s, area_id), write=False)  # type: ignore[attr-defined]

    def user_by_telegram(self, telegram_user_id: int) -> UserView | None:
        """The active staff account linked to a Telegram user, if any."""

        def work(session: Session) -> UserView | None:
            user = session.execute(
                sa.select(User).where(
                    User.telegram_user_id == telegram_user_id, User.active.is_(True)
                )
            ).scalar_one_or_none()
            return user_view(user) if user is not None else None

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def areas_led_by(self, user_id: int) -> list[AreaView]:
        """The areas a user leads directly (each with everything below it)."""

        def work(session: Session) -> list[AreaView]:
            rows = session.execute(
                sa.select(Area)
                .join(AreaLeader, AreaLeader.area_id == Area.id)
                .where(AreaLeader.user_id == user_id)
                .order_by(Area.id)
            ).scalars()
            return [area_view(a) for a in rows]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def leads(self, user_id: int, area_id: int) -> bool:
        """Whether the user leads the area or one above it (admins lead everything)."""

        def work(session: Session) -> bool:
            user = session.get(User, user_id)
            if user is None or not user.active:
                return False
            if user.role == "admin":
                return session.get(Area, area_id) is not None
            chain = chain_ids(session, area_id)
            hit = session.execute(
                sa.select(AreaLeader.area_id).where(
                    AreaLeader.user_id == user_id, AreaLeader.area_id.in_(chain)
                )
            ).first()
            return hit is not None

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def find_area(self, name: str, within: Iterable[int] | None = None) -> list[AreaView]:
        """Areas whose name (or path "社区/网格/楼栋") is ``name``, optionally among ``within``."""
        parts = [p.strip() for p in name.replace("／", "/").split("/") if p.strip()]
        if not parts:
            return []
        allowed = set(within) if within is not None else None

        def work(session: Session) -> list[AreaView]:
            candidates = session.execute(sa.select(Area).where(Area.name == parts[-1])).scalars()
            found = []
            for area in candidates:
                if allowed is not None and area.id not in allowed:
                    continue
                names = []
                for i in chain_ids(session, area.id):
                    row = session.get(Area, i)
                    if row is not None:
                        names.append(row.name)
                names.reverse()
                if names[-len(parts) :] == parts:
                    found.append(area_view(area))
            return found

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def register_group(
        self,
        channel: str,
        external_id: str,
        area_id: int,
        tags: Iterable[str],
        by_user_id: int,
        title: str | None = None,
    ) -> ChatView:
        """Register a group to a place in the grid with its audience tags (replacing old ones).

        Only a leader of that place (or an admin) may; ``PermissionError`` otherwise.
        """
        tag_list = sorted(dict.fromkeys(tags))
        if not self.leads(by_user_id, area_id):
            raise PermissionError("only a leader of this area may register a group to it")

        def work(session: Session) -> ChatView:
            chat = session.execute(
                sa.select(Chat).where(Chat.channel == channel, Chat.external_id == external_id)
            ).scalar_one_or_none()
            if chat is None:
                chat = Chat(
                    channel=channel,
                    external_id=external_id,
                    kind="group",
                    title=title,
                    tags=[],
                    created_at=utcnow(),
                    campaigns_opt_out=False,
                )
                session.add(chat)
            elif chat.kind != "group":
                raise ValueError("only a group can be registered to the grid")
            if title:
                chat.title = title
            chat.area_id = area_id
            chat.tags = tag_list
            chat.registered_by = by_user_id
            chat.registered_at = utcnow()
            session.flush()
            self._audit(  # type: ignore[attr-defined]
                session,
                f"user:{by_user_id}",
                "group.register",
                "chat",
                chat.id,
                {"area_id": area_id, "tags": tag_list},
            )
            return chat_view(chat)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def set_campaigns_opt_out(
        self, channel: str, external_id: str, opted_out: bool, actor: str
    ) -> ChatView:
        """A group stops (or starts again) receiving campaign pushes."""

        def work(session: Session) -> ChatView:
            chat = session.execute(
                sa.select(Chat).where(Chat.channel == channel, Chat.external_id == external_id)
            ).scalar_one_or_none()
            if chat is None:
                raise NotFound(f"no chat {external_id!r} on {channel!r}")
            chat.campaigns_opt_out = opted_out
            chat.opted_out_at = utcnow() if opted_out else None
            session.flush()
            self._audit(  # type: ignore[attr-defined]
                session,
                actor,
                "group.opt_out" if opted_out else "group.opt_in",
                "chat",
                chat.id,
                {},
            )
            return chat_view(chat)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def get_chat(self, channel: str, external_id: str) -> ChatView | None:
        def work(session: Session) -> ChatView | None:
            chat = session.execute(
                sa.select(Chat).where(Chat.channel == channel, Chat.external_id == external_id)
            ).scalar_one_or_none()
            return chat_view(chat) if chat is not None else None

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def groups_in(self, area_id: int) -> list[ChatView]:
        """The registered groups of an area and everything below it."""

        def work(session: Session) -> list[ChatView]:
            ids = subtree_ids(session, area_id)
            rows = session.execute(
                sa.select(Chat)
                .where(Chat.kind == "group", Chat.area_id.in_(ids))
                .order_by(Chat.id)
            ).scalars()
            return [chat_view(c) for c in rows]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]


__all__ = ["Grid", "chain_ids", "subtree_ids"]
