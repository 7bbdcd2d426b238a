"""The sandbox page: chat with the bot in a browser, as residents of a few simulated grid groups.

Without a Telegram token the bot talks to the local sandbox Bot API (``bot.sandbox``); this page
is how a person plays the residents' side. It is plain HTML, CSS and JavaScript served from this
package, with no build step and nothing fetched from the internet, so it works on a laptop with no
network. The page talks only to the sandbox's control endpoints on the same origin
(``/sandbox/send``, ``/sandbox/chats``, ``/sandbox/chats/{id}/messages``, ``/sandbox/reset``).

``routes()`` gives the main app ``GET /sandbox`` (exactly that path, so it never shadows the
sandbox API under ``/sandbox/...``) and the assets under ``/static/sandbox/``. The page's
template lives outside the static directory, so it is served only filled in and with its headers.
A strict Content-Security-Policy, sent with the page and with every asset, forbids inline script
and any other origin: even if a message's text ever reached the DOM as markup, the browser would
not run it.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.sandbox.state import BOT_FIRST_NAME, BOT_USERNAME

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static" / "sandbox"
TEMPLATE = HERE / "templates" / "sandbox.html"
PAGE_PATH = "/sandbox"
STATIC_PATH = "/static/sandbox"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def render_page(bot_username: str = BOT_USERNAME, bot_name: str = BOT_FIRST_NAME) -> str:
    """The page's HTML with the bot's username and name filled in (escaped)."""
    template = TEMPLATE.read_text(encoding="utf-8")
    return template.replace("{{bot_username}}", html.escape(bot_username)).replace(
        "{{bot_name}}", html.escape(bot_name)
    )


class _WithHeaders:
    """An ASGI wrapper that adds ``headers`` to every response of ``app`` (404s included)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in self.raw}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def routes(
    *, bot_username: str = BOT_USERNAME, bot_name: str = BOT_FIRST_NAME
) -> list[Route | Mount]:
    """``GET /sandbox`` (the page) and ``/static/sandbox/...`` (its assets), for Starlette."""

    async def page(_request: Request) -> HTMLResponse:
        # Read on every request: cheap, and an edited page shows without a restart.
        return HTMLResponse(
            render_page(bot_username, bot_name),
            headers={"Cache-Control": "no-cache", **SECURITY_HEADERS},
        )

    # Assets are revalidated (ETag / Last-Modified) on every load, so an edit shows at once.
    assets = _WithHeaders(
        StaticFiles(directory=STATIC_DIR), {"Cache-Control": "no-cache", **SECURITY_HEADERS}
    )
    return [
        Route(PAGE_PATH, page, methods=["GET"], name="sandbox_page"),
        Mount(STATIC_PATH, app=assets, name="sandbox_static"),
    ]
