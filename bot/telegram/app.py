"""The application process: the Telegram bot and its web server, composed in one place.

``run_app`` builds everything from the settings: the store, the Rasa client, the store-first
gateway, the quiet group watcher, the OCR reader, the python-telegram-bot ``Application`` (rate
limited, Telegram's ``RetryAfter`` honoured), its handlers and repeating jobs, and the web server
on ``WEB_PORT`` (8000). Without ``TELEGRAM_BOT_TOKEN`` it also serves the sandbox, a local
Telegram-compatible Bot API, and points the bot at it. With a token it talks to Telegram, by
polling or, with ``TELEGRAM_MODE=webhook``, through ``/telegram/webhook`` whose secret token is
checked on every request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from datetime import timedelta

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BasePersistence,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.dashboard.auth import sandbox_admin
from bot.dashboard.web import Dashboard
from bot.gateway import Gateway
from bot.nlp.analysis import get_analyzer
from bot.nlp.classify import Classifier
from bot.nlp.rasa_server import RasaClient
from bot.nlp.taxonomy import load_taxonomy
from bot.ocr import get_reader
from bot.settings import Settings
from bot.store.db import upgrade
from bot.store.repo import Store
from bot.telegram.handlers import COMMANDS, FrontEnd
from bot.telegram.leaders import Leaders
from bot.telegram.notify import Notifier
from bot.telegram.outbox import Courier
from bot.telegram.persistence import bot_persistence
from bot.telegram.watch import GroupWatcher
from campaigns.delivery import Herald
from campaigns.planner import Planner
from campaigns.scheduler import CampaignScheduler

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1_000_000
# How often the jobs run (seconds): waiting messages, urgent alerts, answers to reporters.
RETRY_EVERY = 3.0
ALERTS_EVERY = 5.0
ANSWERS_EVERY = 10.0
OUTBOX_EVERY = 2.0
# Updates fetched but not yet handled live only in memory until the gateway has stored them. A
# bounded queue makes polling (and the webhook) wait when the bot falls behind, so the updates
# still at Telegram stay there, unacknowledged, instead of piling up here to be lost in a crash.
UPDATE_QUEUE_SIZE = 64


def build_application(
    settings: Settings,
    token: str,
    api_url: str,
    file_url: str,
    persistence: BasePersistence | None = None,
) -> Application:
    """The Application; with ``persistence``, its persistent conversations survive a restart."""
    builder = ApplicationBuilder()
    if persistence is not None:
        builder = builder.persistence(persistence)
    return (
        builder.token(token)
        .base_url(api_url)
        .base_file_url(file_url)
        .rate_limiter(AIORateLimiter(max_retries=5))
        .update_queue(asyncio.Queue(maxsize=UPDATE_QUEUE_SIZE))
        .concurrent_updates(32)
        .connect_timeout(10)
        .read_timeout(30)
        .get_updates_read_timeout(40)
        .build()
    )


def register(
    application: Application,
    front: FrontEnd,
    notifier: Notifier,
    courier: Courier,
    leaders: Leaders | None = None,
) -> None:
    # Leaders' handlers first: a campaign being set up gets its text before the conversation.
    for handler in leaders.handlers() if leaders is not None else []:
        application.add_handler(handler)
    application.add_handler(CommandHandler(list(COMMANDS), front.on_command))
    application.add_handler(CallbackQueryHandler(front.on_callback))
    application.add_handler(
        MessageHandler(
            filters.ALL & ~filters.COMMAND & ~filters.StatusUpdate.ALL, front.on_message
        )
    )
    application.add_error_handler(_on_error)
    jobs = application.job_queue
    assert jobs is not None, "python-telegram-bot[job-queue] is needed"
    jobs.run_repeating(front.deliver_later, RETRY_EVERY, first=RETRY_EVERY)
    jobs.run_repeating(lambda _context: courier.flush(), OUTBOX_EVERY, first=OUTBOX_EVERY)
    jobs.run_repeating(lambda _context: courier.requeue_stale(), 60.0, first=60.0)
    jobs.run_repeating(notifier.alerts, ALERTS_EVERY, first=ALERTS_EVERY)
    jobs.run_repeating(notifier.answers, ANSWERS_EVERY, first=ANSWERS_EVERY)


async def _on_error(update: object, context) -> None:  # type: ignore[no-untyped-def]
    logger.error("handling an update failed: %r", context.error, exc_info=context.error)


def webhook_route(application: Application, secret: str) -> Route:
    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return JSONResponse({"ok": False, "description": "Forbidden"}, status_code=403)
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            return JSONResponse({"ok": False, "description": "too large"}, status_code=413)
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("webhook: a request that is not an update: %s", exc)
            return JSONResponse({"ok": False, "description": "Bad Request"}, status_code=400)
        await application.update_queue.put(update)
        return JSONResponse({"ok": True})

    return Route(WEBHOOK_PATH, receive, methods=["POST"])


async def run_app(settings: Settings, stop: asyncio.Event) -> None:
    """Run the bot and the web server until ``stop`` is set."""
    upgrade(settings.database_url)
    store = Store.from_settings(settings)
    taxonomy = load_taxonomy(settings.taxonomy_path)
    analyzer = get_analyzer(settings.taxonomy_path, settings.lookups_dir)
    rasa = RasaClient(settings.rasa_url, timeout=settings.rasa_request_timeout)
    classifier = Classifier(rasa, analyzer, taxonomy, settings.scam_threshold)
    watcher = GroupWatcher(
        classifier,
        store,
        taxonomy,
        settings.group_warn_confidence,
        timedelta(minutes=settings.group_warn_window_minutes),
    )
    gateway = Gateway(store, rasa, watch=watcher.check)
    staff = int(settings.staff_chat_id) if settings.staff_chat_id.lstrip("-").isdigit() else None

    routes: list[BaseRoute] = [Route("/health", lambda _r: JSONResponse({"ok": True}))]
    routes += Dashboard(store, taxonomy, settings).routes()
    base = f"http://{settings.web_host}:{settings.web_port}"
    first_password = sandbox_admin(store) if settings.sandbox else None
    if settings.sandbox:
        from bot.sandbox.server import create_app
        from bot.sandbox.state import SandboxState
        from bot.web.sandbox_page import routes as page_routes

        token = f"{7_000_000_001}:{secrets.token_urlsafe(24)}"
        sandbox: SandboxState | None = SandboxState(token)
        routes += page_routes()
        routes.append(Mount("/", create_app(sandbox)))
        api_url, file_url = f"{base}/sandbox/bot", f"{base}/sandbox/file/bot"
    else:
        sandbox = None
        token = settings.telegram_bot_token
        api_url, file_url = settings.telegram_api_url, settings.telegram_file_url

    application = build_application(settings, token, api_url, file_url, bot_persistence(settings))
    courier = Courier(store, application.bot)
    front = FrontEnd(gateway, store, get_reader, courier)
    notifier = Notifier(store, taxonomy, courier, staff)
    leaders = Leaders(store, courier, taxonomy)
    register(application, front, notifier, courier, leaders)
    planner = Planner(store)
    herald = Herald(store, application.bot, rate=settings.campaign_rate)
    campaigns = CampaignScheduler(planner, herald, tick_seconds=settings.campaign_tick_seconds)
    if settings.telegram_mode == "webhook":
        # first: the sandbox is mounted at "/" and would take every path after it
        routes.insert(0, webhook_route(application, settings.telegram_webhook_secret))

    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=routes),
            host=settings.web_host,
            port=settings.web_port,
            log_level="warning",
            lifespan="off",
            ws="none",  # no websockets here; rasa-sdk pins an old websockets uvicorn cannot use
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # the port is taken, say: raise it
        await asyncio.sleep(0.05)
    try:
        await application.initialize()
        await application.bot.set_my_commands(
            [BotCommand(name, text) for name, (text, _payload) in COMMANDS.items()]
        )
        await courier.requeue_stale(0.0)  # claimed by an earlier run that stopped: send again
        await application.start()
        if settings.telegram_mode == "webhook":
            await application.bot.set_webhook(
                settings.telegram_webhook_url.rstrip("/") + WEBHOOK_PATH,
                secret_token=settings.telegram_webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        await campaigns.start()
        if settings.sandbox:
            print(
                f"Sandbox (no TELEGRAM_BOT_TOKEN): chat with the bot at {base}/sandbox", flush=True
            )
            if first_password is not None:
                print(
                    f"Staff dashboard at {base}/ : first account 'admin', password "
                    f"{first_password} (shown once; change it with "
                    "`antifraud users passwd admin`).",
                    flush=True,
                )
        else:
            print(f"Telegram bot @{application.bot.username} is running.", flush=True)
        print(f"Staff dashboard: {base}/", flush=True)
        await stop.wait()
    finally:
        await campaigns.stop()  # the pushes on the way finish; nothing is sent twice
        if application.updater and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        if sandbox is not None:
            await sandbox.close()  # ends the page's long polls, so the server stops at once
        server.should_exit = True
        await serving
        await rasa.aclose()
        store.close()
