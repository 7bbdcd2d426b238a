"""Staff accounts for the dashboard: passwords, the login lockout and signed-in sessions.

The store never sees a password, only its argon2 hash (made by ``bot.dashboard.passwords``), and
never a session's token, only its SHA-256: a copy of the database lets nobody sign in. A session
ends when it expires, when its user signs out, is disabled or gets a new password.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.store.errors import NotFound
from bot.store.models import USER_ROLES, AreaLeader, AuditLog, User, WebSession
from bot.store.rows import user_view
from bot.store.types import utcnow
from bot.store.views import UserView

#: Failed logins in a row after which an account is locked, and for how long.
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
#: A session not used for this long ends, whatever its expiry.
IDLE_TIMEOUT = timedelta(hours=2)


def _user_id(actor: str) -> int | None:
    rest = actor.removeprefix("user:")
    return int(rest) if rest != actor and rest.isdigit() else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoginRecord:
    """What a login needs to know about an account; ``password_hash`` stays in the process."""

    user: UserView
    password_hash: str | None = field(repr=False)
    locked_until: datetime | None
    failed_logins: int


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, the CSRF token its forms carry, and the areas they may see."""

    session_id: int
    user: UserView
    csrf_token: str = field(repr=False)
    #: ``None`` for admins and staff (everything); a grid leader's areas and all below them.
    area_ids: frozenset[int] | None
    expires_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    actor_name: str | None  # the account's username when the actor is "user:<id>"
    action: str
    target_type: str
    target_id: int | None
    details: dict[str, Any]


class Accounts:
    """Mixed into ``Store``: needs ``run_in`` and ``_audit``."""

    def user_by_name(self, username: str) -> UserView | None:
        def work(session: Session) -> UserView | None:
            user = session.execute(
                sa.select(User).where(User.username == username)
            ).scalar_one_or_none()
            return None if user is None else user_view(user)

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def users(self) -> list[UserView]:
        def work(session: Session) -> list[UserView]:
            rows = session.execute(sa.select(User).order_by(User.id)).scalars()
            return [user_view(u) for u in rows]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def login_record(self, username: str) -> LoginRecord | None:
        def work(session: Session) -> LoginRecord | None:
            user = session.execute(
                sa.select(User).where(User.username == username)
            ).scalar_one_or_none()
            if user is None:
                return None
            return LoginRecord(
                user=user_view(user),
                password_hash=user.password_hash,
                locked_until=user.locked_until,
                failed_logins=user.failed_logins,
            )

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def add_account(
        self,
        username: str,
        role: str,
        password_hash: str,
        actor: str,
        *,
        display_name: str | None = None,
        telegram_user_id: int | None = None,
        lead_areas: Iterable[int] = (),
    ) -> UserView:
        """A new account with its password (already hashed) and the areas it leads, in one
        transaction: a failure leaves no account behind. ``IntegrityError`` if the name or the
        Telegram id is taken; audited."""
        if role not in USER_ROLES:
            raise ValueError(f"role must be one of {', '.join(USER_ROLES)}")
        if not password_hash.startswith("$argon2"):
            raise ValueError("the store keeps argon2 hashes only")
        areas = list(dict.fromkeys(lead_areas))

        def work(session: Session) -> UserView:
            now = utcnow()
            user = User(
                username=username,
                role=role,
                display_name=display_name,
                telegram_user_id=telegram_user_id,
                password_hash=password_hash,
                password_changed_at=now,
                active=True,
                created_at=now,
            )
            session.add(user)
            session.flush()
            details = {"role": role, "telegram_linked": telegram_user_id is not None}
            self._audit(session, actor, "user.add", "user", user.id, details)  # type: ignore[attr-defined]
            for area_id in areas:
                session.add(AreaLeader(area_id=area_id, user_id=user.id))
                self._audit(  # type: ignore[attr-defined]
                    session, actor, "leader.add", "area", area_id, {"user_id": user.id}
                )
            session.flush()
            return user_view(user)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def set_password_hash(self, user_id: int, password_hash: str, actor: str) -> UserView:
        """A new password (already hashed); every session of the user ends; audited."""
        if not password_hash.startswith("$argon2"):
            raise ValueError("the store keeps argon2 hashes only")

        def work(session: Session) -> UserView:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound(f"no user {user_id}")
            now = utcnow()
            user.password_hash = password_hash
            user.password_changed_at = now
            user.failed_logins = 0
            user.locked_until = None
            self._end_sessions(session, user_id, now)
            self._audit(session, actor, "user.password", "user", user_id, {})  # type: ignore[attr-defined]
            session.flush()
            return user_view(user)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def rehash_password(self, user_id: int, password_hash: str) -> None:
        """The same password under newer argon2 parameters (sessions stay)."""

        def work(session: Session) -> None:
            user = session.get(User, user_id, with_for_update=True)
            if user is not None:
                user.password_hash = password_hash

        self.run_in(work, write=True)  # type: ignore[attr-defined]

    def set_user_active(self, user_id: int, active: bool, actor: str) -> UserView:
        """Enable or disable an account; disabling ends its sessions; audited."""

        def work(session: Session) -> UserView:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound(f"no user {user_id}")
            user.active = active
            if not active:
                self._end_sessions(session, user_id, utcnow())
            action = "user.enable" if active else "user.disable"
            self._audit(session, actor, action, "user", user_id, {})  # type: ignore[attr-defined]
            session.flush()
            return user_view(user)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def set_user_role(self, user_id: int, role: str, actor: str) -> UserView:
        if role not in USER_ROLES:
            raise ValueError(f"role must be one of {', '.join(USER_ROLES)}")

        def work(session: Session) -> UserView:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound(f"no user {user_id}")
            before = user.role
            user.role = role
            self._end_sessions(session, user_id, utcnow())
            details = {"from": before, "to": role}
            self._audit(session, actor, "user.role", "user", user_id, details)  # type: ignore[attr-defined]
            session.flush()
            return user_view(user)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def login_failed(self, user_id: int, now: datetime | None = None) -> datetime | None:
        """Count a wrong password; returns the time the account is locked until, if it is."""
        at = now or utcnow()

        def work(session: Session) -> datetime | None:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound(f"no user {user_id}")
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until = at + LOCKOUT
                user.failed_logins = 0
                self._audit(  # type: ignore[attr-defined]
                    session, f"user:{user_id}", "login.locked", "user", user_id, {}
                )
            else:
                self._audit(  # type: ignore[attr-defined]
                    session, f"user:{user_id}", "login.failed", "user", user_id, {}
                )
            session.flush()
            return user.locked_until if user.locked_until and user.locked_until > at else None

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def start_session(
        self,
        user_id: int,
        token: str,
        csrf_token: str,
        lifetime: timedelta,
        user_agent: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """A successful login: the failure count is reset and a session begins; audited."""
        at = now or utcnow()

        def work(session: Session) -> int:
            user = session.get(User, user_id, with_for_update=True)
            if user is None or not user.active:
                raise NotFound(f"no active user {user_id}")
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = at
            row = WebSession(
                token_hash=token_hash(token),
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=at,
                last_seen_at=at,
                expires_at=at + lifetime,
                user_agent=(user_agent or "")[:255] or None,
            )
            session.add(row)
            session.flush()
            self._audit(session, f"user:{user_id}", "login", "user", user_id, {})  # type: ignore[attr-defined]
            return row.id

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def signed_in(self, token: str, now: datetime | None = None) -> SignedIn | None:
        """The live session behind a cookie's token, marked used; ``None`` if it has ended."""
        at = now or utcnow()

        def work(session: Session) -> SignedIn | None:
            row = session.execute(
                sa.select(WebSession).where(WebSession.token_hash == token_hash(token))
            ).scalar_one_or_none()
            if row is None or row.revoked_at is not None or row.expires_at <= at:
                return None
            if row.last_seen_at + IDLE_TIMEOUT <= at:
                row.revoked_at = at
                return None
            user = session.get(User, row.user_id)
            if user is None or not user.active:
                return None
            if at - row.last_seen_at > timedelta(minutes=1):  # one write a minute, not per page
                row.last_seen_at = at
            areas: frozenset[int] | None = None
            if user.role == "grid_leader":
                from bot.store.grid import subtree_ids

                led = session.execute(
                    sa.select(AreaLeader.area_id).where(AreaLeader.user_id == user.id)
                ).scalars()
                found: set[int] = set()
                for area_id in led:
                    found.update(subtree_ids(session, area_id))
                areas = frozenset(found)
            return SignedIn(
                session_id=row.id,
                user=user_view(user),
                csrf_token=row.csrf_token,
                area_ids=areas,
                expires_at=row.expires_at,
            )

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def end_session(self, token: str, actor: str) -> None:
        """Sign out: the session ends at once; audited."""

        def work(session: Session) -> None:
            row = session.execute(
                sa.select(WebSession).where(WebSession.token_hash == token_hash(token))
            ).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                return
            row.revoked_at = utcnow()
            self._audit(session, actor, "logout", "user", row.user_id, {})  # type: ignore[attr-defined]

        self.run_in(work, write=True)  # type: ignore[attr-defined]

    @staticmethod
    def _end_sessions(session: Session, user_id: int, at: datetime) -> None:
        session.execute(
            sa.update(WebSession)
            .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    def audit_entries(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        target_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AuditEntry], int]:
        """The audit log, newest first, optionally of one action (or prefix ``report.``), one
        actor or one kind of record; with the count of all that match."""
        limit = max(1, min(limit, 500))

        def work(session: Session) -> tuple[list[AuditEntry], int]:
            query = sa.select(AuditLog)
            if action:
                if action.endswith("."):
                    query = query.where(AuditLog.action.startswith(action, autoescape=True))
                else:
                    query = query.where(AuditLog.action == action)
            if actor:
                query = query.where(AuditLog.actor == actor)
            if target_type:
                query = query.where(AuditLog.target_type == target_type)
            total = session.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            rows = session.execute(
                query.order_by(AuditLog.id.desc()).limit(limit).offset(max(0, offset))
            ).scalars()
            entries = list(rows)
            ids = {uid for e in entries if (uid := _user_id(e.actor)) is not None}
            names: dict[int, str] = {}
            if ids:
                query_names = sa.select(User.id, User.username).where(User.id.in_(ids))
                names = {uid: name for uid, name in session.execute(query_names).tuples()}
            found = [
                AuditEntry(
                    id=e.id,
                    at=e.at,
                    actor=e.actor,
                    actor_name=names.get(_user_id(e.actor) or 0),
                    action=e.action,
                    target_type=e.target_type,
                    target_id=e.target_id,
                    details=dict(e.details or {}),
                )
                for e in entries
            ]
            return found, int(total)

        return self.run_in(work, write=False)  # type: ignore[attr-defined]
