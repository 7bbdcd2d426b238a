"""The sandbox as an ASGI app: Bot API, file downloads and control API, all under /sandbox/.

``create_app(state)`` returns a Starlette app that a bot reaches with
``base_url="http://HOST:PORT/sandbox/bot"`` and ``base_file_url="http://HOST:PORT/sandbox/file/bot"``.
It holds no global state and starts nothing at import or startup (the webhook sender is started
by setWebhook), so the main app can mount it with ``Mount("", app=create_app(state))`` next to
its own routes; it should then call ``await state.aclose()`` when it shuts down, which the app's
own lifespan does when it runs alone.

Per Bot API request: the token (401), the method (404), an injected fault, the parameters, then
the method under the state's lock. Every answer is ``{"ok": true, "result": ...}`` or Telegram's
error object with the same HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.control import ControlApi
from bot.sandbox.errors import (
    STATUS_DESCRIPTIONS,
    ApiError,
    not_found,
    too_many_requests,
    unauthorized,
)
from bot.sandbox.methods import Answer, find_method
from bot.sandbox.models import Fault
from bot.sandbox.params import read_params
from bot.sandbox.state import SandboxState

_LOGGER = logging.getLogger(__name__)


def _fault_error(fault: Fault) -> ApiError:
    if fault.status == 429:
        error = too_many_requests(fault.retry_after or 1)
        if fault.description:
            error.description = fault.description
        return error
    status = fault.status or 500
    return ApiError(status, fault.description or STATUS_DESCRIPTIONS.get(status, "Error"))


def _error_response(error: ApiError) -> Response:
    return JSONResponse(error.to_json(), status_code=error.status)


class BotApi:
    """``/sandbox/bot{token}/{method}`` and ``/sandbox/file/bot{token}/{file_path}``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def _check_token(self, token: str) -> None:
        if not secrets.compare_digest(token.encode("utf-8"), self.state.token.encode("utf-8")):
            raise unauthorized()

    async def call(self, request: Request) -> Response:
        state = self.state
        try:
            self._check_token(request.path_params["token"])
            name = request.path_params["method"]
            handler = find_method(name)
            if handler is None:
                raise not_found()
            async with state.changed:
                fault = state.take_fault(name)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    raise _fault_error(fault)
            params = await read_params(request)
            async with state.changed:
                result = await handler(state, params)
        except ApiError as error:
            if error.status >= 500 or error.status == 429:
                _LOGGER.info("sandbox answered %d: %s", error.status, error.description)
            return _error_response(error)
        body: dict[str, Any] = {"ok": True}
        if isinstance(result, Answer):
            body["result"] = result.result
            if result.description:
                body["description"] = result.description
        else:
            body["result"] = result
        return JSONResponse(body)

    async def download(self, request: Request) -> Response:
        try:
            self._check_token(request.path_params["token"])
            async with self.state.changed:
                stored = self.state.files_by_path.get(request.path_params["file_path"])
            if stored is None:
                raise not_found()
        except ApiError as error:
            return _error_response(error)
        return Response(stored.data, media_type=stored.mime_type)


def _control_error(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as error:
            return _error_response(error)

    return endpoint


def create_app(state: SandboxState) -> Starlette:
    """The sandbox app for ``state``; mountable at the root of another Starlette app."""
    api = BotApi(state)
    control = ControlApi(state)

    def route(path: str, handler: Any, methods: list[str]) -> Route:
        return Route(path, _control_error(handler), methods=methods)

    routes = [
        Route("/sandbox/bot{token}/{method}", api.call, methods=["GET", "POST"]),
        Route("/sandbox/file/bot{token}/{file_path:path}", api.download, methods=["GET"]),
        route("/sandbox/send", control.send, ["POST"]),
        route("/sandbox/chats", control.chats, ["GET"]),
        route("/sandbox/chats/{chat_id}/messages", control.messages, ["GET"]),
        route("/sandbox/callbacks/{query_id}", control.callback, ["GET"]),
        route("/sandbox/files/{file_id}", control.file, ["GET"]),
        route("/sandbox/bot", control.bot, ["GET"]),
        route("/sandbox/faults", control.add_faults, ["POST"]),
        route("/sandbox/faults", control.list_faults, ["GET"]),
        route("/sandbox/faults", control.clear_faults, ["DELETE"]),
        route("/sandbox/limits", control.limits, ["POST"]),
        route("/sandbox/reset", control.reset, ["POST"]),
        route("/sandbox/health", control.health, ["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    return app
