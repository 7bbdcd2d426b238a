"""The staff dashboard: server-rendered pages for admins, staff and grid leaders, in Chinese.

``Dashboard`` holds what every page needs (the store, the scam taxonomy, the Jinja environment)
and ``routes()`` gives the application's Starlette server every dashboard path, to be placed
before the sandbox (which is mounted at ``/`` and would take any path after it).

Every page goes through ``page()``: it finds the signed-in user from the session cookie (or sends
the browser to the login page), checks the role, and on a POST checks the form's CSRF token
before the handler runs. Templates are autoescaped; a strict Content-Security-Policy (no inline
script or style, nothing from another origin) is sent with every page and asset, so even text a
scammer wrote that somehow reached the markup would be shown, never run. Pages carry personal
data and are never cached.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.dashboard import labels
from bot.nlp.taxonomy import Taxonomy
from bot.settings import Settings
from bot.store.accounts import SignedIn
from bot.store.repo import Store
from bot.web.sandbox_page import _WithHeaders

logger = logging.getLogger(__name__)

T = TypeVar("T")
HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC_DIR = HERE / "static" / "dashboard"
STATIC_PATH = "/static/dashboard"
SHANGHAI = ZoneInfo("Asia/Shanghai")

SESSION_COOKIE = "af_session"
LOGIN_CSRF_COOKIE = "af_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

ADMIN = "admin"
STAFF = "staff"
LEADER = "grid_leader"
EVERYONE = frozenset({ADMIN, STAFF, LEADER})
STAFF_ROLES = frozenset({ADMIN, STAFF})
ADMINS = frozenset({ADMIN})

# Forms are small; only the case import uploads a file (its own limit is checked there too).
MAX_FORM_FIELDS = 200
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_FORM_OVERHEAD = 1024 * 1024
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PAGE_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}

Handler = Callable[[Request, SignedIn], Awaitable[Response]]


class Forbidden(Exception):
    """The signed-in user may not do this (a role, or a report outside their grid)."""


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(SHANGHAI).strftime(fmt)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in Chinese: 刚刚, 12 分钟前, 3 小时前, 2 天前."""
    if value is None:
        return ""
    seconds = ((now or datetime.now(SHANGHAI)) - value).total_seconds()
    if seconds < 60:
        return "刚刚"
    if seconds < 3600:
        return f"{int(seconds // 60)} 分钟前"
    if seconds < 86400:
        return f"{int(seconds // 3600)} 小时前"
    return f"{int(seconds // 86400)} 天前"


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only, never another origin."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Dashboard:
    """What the pages share; the pages themselves live in ``bot.dashboard.pages``."""

    def __init__(
        self,
        store: Store,
        taxonomy: Taxonomy,
        settings: Settings,
    ) -> None:
        self.store = store
        self.taxonomy = taxonomy
        self.settings = settings
        self.session_lifetime = timedelta(hours=settings.dashboard_session_hours)
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html", "xml"], default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["local"] = local_time
        self.env.filters["ago"] = ago
        self.env.filters["scam_name"] = self.scam_name
        self.env.globals["labels"] = labels
        self.env.globals["static"] = lambda name: f"{STATIC_PATH}/{name}"

    # helpers for the pages

    def scam_name(self, code: str | None) -> str:
        if not code:
            return ""
        if code == "not_scam":
            return "不是诈骗"
        try:
            return self.taxonomy.get(code).name
        except KeyError:
            return code

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A store call, in a worker thread: the event loop also serves the bot."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    def render(
        self,
        request: Request,
        template: str,
        me: SignedIn | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        page = self.env.get_template(template).render(
            request=request,
            me=me,
            csrf_token=me.csrf_token if me is not None else context.pop("login_csrf", ""),
            path=request.url.path,
            **context,
        )
        return HTMLResponse(page, status_code=status_code, headers=PAGE_HEADERS)

    def error(self, request: Request, me: SignedIn | None, status: int, message: str) -> Response:
        return self.render(request, "error.html", me, status_code=status, message=message)

    def visible(self, me: SignedIn) -> frozenset[int] | None:
        """The areas a user may see: ``None`` for everything (admins and staff)."""
        return me.area_ids if me.user.role == LEADER else None

    def secure_cookies(self, request: Request) -> bool:
        """Cookies only over HTTPS: always (on), never (off), or as the request came (auto;
        behind a proxy that ends TLS, uvicorn reads the scheme from X-Forwarded-Proto)."""
        mode = self.settings.dashboard_secure_cookies
        return mode == "on" or (mode == "auto" and request.url.scheme == "https")

    def actor(self, me: SignedIn) -> str:
        return f"user:{me.user.id}"

    # the guard every page goes through

    async def signed_in(self, request: Request) -> SignedIn | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 128:
            return None
        return await self.call(self.store.signed_in, token)

    def page(
        self,
        path: str,
        handler: Handler,
        *,
        roles: Iterable[str] = EVERYONE,
        methods: Iterable[str] = ("GET",),
        name: str | None = None,
    ) -> Route:
        allowed = frozenset(roles)

        async def endpoint(request: Request) -> Response:
            me = await self.signed_in(request)
            if me is None:
                if request.method == "GET":
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
                return self.error(request, None, 401, "请先登录。")
            if any(isinstance(v, int) and v > MAX_ID for v in request.path_params.values()):
                return self.error(request, me, 404, "没有这条记录。")  # no id is that large
            if me.user.role not in allowed:
                return self.error(request, me, 403, "您的账号没有权限打开这个页面。")
            if request.method == "POST":
                # Checked before the body is read: Starlette spools file parts of any size.
                length = request.headers.get("content-length", "")
                if not length.isdigit():
                    return self.error(request, me, 411, "提交的内容缺少长度，请用浏览器提交。")
                if int(length) > MAX_UPLOAD_BYTES + MAX_FORM_OVERHEAD:
                    return self.error(request, me, 413, "提交的内容太大了（文件最大 20 MB）。")
                refusal = await self.check_csrf(request, me)
                if refusal is not None:
                    return refusal
            try:
                return await handler(request, me)
            except Forbidden as exc:
                return self.error(request, me, 403, str(exc) or "您没有权限查看或处理这条记录。")

        return Route(path, endpoint, methods=list(methods), name=name)

    async def check_csrf(self, request: Request, me: SignedIn) -> Response | None:
        """A POST must carry the session's token; a form from another origin is refused too."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.rstrip("/") != self.origin_of(request):
            logger.warning("dashboard: a POST from another origin was refused")
            return self.error(request, me, 403, "请求来源不对，已拒绝。请从本系统页面提交。")
        given = request.headers.get(CSRF_HEADER, "")
        if not given:
            form = await self.form(request)
            value = form.get(CSRF_FIELD, "")
            given = value if isinstance(value, str) else ""
        if not given or not hmac.compare_digest(given.encode(), me.csrf_token.encode()):
            logger.warning("dashboard: a POST without a valid CSRF token was refused")
            return self.error(request, me, 403, "表单已过期或无效，请刷新页面后再提交。")
        return None

    @staticmethod
    def origin_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    @staticmethod
    async def form(request: Request) -> FormData:
        """The request's form (parsed once, then cached by Starlette), within size limits."""
        return await request.form(max_fields=MAX_FORM_FIELDS, max_part_size=MAX_UPLOAD_BYTES)

    def routes(self) -> list[BaseRoute]:
        from bot.dashboard import auth
        from bot.dashboard.pages import all_routes

        assets = _WithHeaders(
            StaticFiles(directory=STATIC_DIR), {"Cache-Control": "no-cache", **SECURITY_HEADERS}
        )
        return [
            *auth.routes(self),
            *all_routes(self),
            Mount(STATIC_PATH, app=assets, name="dashboard_static"),
        ]
