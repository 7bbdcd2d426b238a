"""Logging in and out of the dashboard.

A login form carries its own CSRF token (a random value also set as a short-lived cookie, the
double-submit pattern), so another site cannot log a browser into an account of its choosing.
A right password starts a session: a random token in an HttpOnly, SameSite=Lax cookie, of which
the store keeps only the SHA-256. Five wrong passwords in a row lock the account for 15 minutes
(``bot.store.accounts``); besides, one address may try only ``ATTEMPTS_PER_WINDOW`` times in
``WINDOW`` whatever the usernames. Every answer to a failed login is the same, so the form does
not tell which usernames exist.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import deque

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.dashboard import passwords
from bot.dashboard.web import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Dashboard, safe_next
from bot.store.accounts import SignedIn
from bot.store.repo import Store
from bot.store.types import utcnow

logger = logging.getLogger(__name__)

WINDOW = 300.0
ATTEMPTS_PER_WINDOW = 30
FAILED = "用户名或密码不对，或账号已停用。"
LOCKED = "登录失败次数太多，账号已暂时锁定，请 15 分钟后再试。"
TOO_MANY = "这台电脑尝试登录的次数太多，请稍后再试。"


class Throttle:
    """At most ``limit`` login attempts per client address in a sliding window."""

    def __init__(self, limit: int = ATTEMPTS_PER_WINDOW, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self.seen: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float | None = None) -> bool:
        at = time.monotonic() if now is None else now
        times = self.seen.setdefault(client, deque())
        while times and times[0] <= at - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(at)
        if len(self.seen) > 10_000:  # forget quiet addresses rather than grow without end
            for key in [k for k, v in self.seen.items() if not v][:5_000]:
                del self.seen[key]
        return True


def routes(dash: Dashboard) -> list[BaseRoute]:
    throttle = Throttle()

    def login_page(
        request: Request, *, error: str = "", username: str = "", status: int = 200
    ) -> Response:
        token = secrets.token_urlsafe(32)
        response = dash.render(
            request,
            "login.html",
            None,
            status_code=status,
            login_csrf=token,
            error=error,
            username=username,
            next=safe_next(request.query_params.get("next")),
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            max_age=3600,
            httponly=True,
            samesite="strict",
            secure=dash.secure_cookies(request),
            path="/login",
        )
        return response

    async def show(request: Request) -> Response:
        if await dash.signed_in(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return login_page(request)

    async def submit(request: Request) -> Response:
        form = await dash.form(request)
        given = form.get("csrf_token", "")
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if (
            not isinstance(given, str)
            or not expected
            or not hmac.compare_digest(given.encode(), expected.encode())
        ):
            return login_page(request, error="登录表单已过期，请再试一次。", status=403)
        username = str(form.get("username", "")).strip()[:64]
        password = str(form.get("password", ""))
        client = request.client.host if request.client else "unknown"
        if not throttle.allow(client):
            return login_page(request, error=TOO_MANY, username=username, status=429)
        record = await dash.call(dash.store.login_record, username) if username else None
        now = utcnow()
        if record is not None and record.locked_until is not None and record.locked_until > now:
            passwords.verify(None, password)  # the same time as any other answer
            return login_page(request, error=LOCKED, username=username, status=429)
        hashed = record.password_hash if record is not None and record.user.active else None
        if not await dash.call(passwords.verify, hashed, password):
            if record is not None and record.user.active:
                locked = await dash.call(dash.store.login_failed, record.user.id)
                if locked is not None:
                    return login_page(request, error=LOCKED, username=username, status=429)
            return login_page(request, error=FAILED, username=username, status=401)
        assert record is not None and hashed is not None
        if passwords.needs_rehash(hashed):
            await dash.call(
                dash.store.rehash_password, record.user.id, passwords.hash_password(password)
            )
        token = secrets.token_urlsafe(32)
        await dash.call(
            dash.store.start_session,
            record.user.id,
            token,
            secrets.token_urlsafe(32),
            dash.session_lifetime,
            request.headers.get("user-agent"),
        )
        target = safe_next(str(form.get("next", "") or ""))
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(dash.session_lifetime.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=dash.secure_cookies(request),
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    async def logout(request: Request, me: SignedIn) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        await dash.call(dash.store.end_session, token, dash.actor(me))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def home(request: Request, me: SignedIn) -> Response:
        return RedirectResponse("/reports", status_code=303)

    return [
        Route("/login", show, methods=["GET"], name="login"),
        Route("/login", submit, methods=["POST"], name="login_submit"),
        dash.page("/logout", logout, methods=["POST"], name="logout"),
        dash.page("/", home, name="home"),
    ]


def sandbox_admin(store: Store) -> str | None:
    """In the sandbox, an ``admin`` account with a random password when no account has a
    password yet, so that ``make run`` alone gives a way in; the password, to show once."""
    if any(user.has_password and user.active for user in store.users()):
        return None
    password = secrets.token_urlsafe(12)
    user = store.user_by_name("admin") or store.add_user("admin", "admin", "管理员")
    if user.role != "admin":
        return None
    store.set_password_hash(user.id, passwords.hash_password(password, "admin"), "sandbox")
    return password
