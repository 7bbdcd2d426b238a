"""Delivering updates to a webhook the way Telegram does: in order, one at a time, retried.

While a webhook is set, one task per webhook POSTs the oldest pending update as JSON with the
``X-Telegram-Bot-Api-Secret-Token`` header. An update leaves the queue only when the receiver
answers 2xx; otherwise the error is recorded for getWebhookInfo (``last_error_date``,
``last_error_message``, in Telegram's words) and the same update is sent again after a pause
that doubles up to ``state.webhook_retry_max``. The task is started lazily by setWebhook on the
serving event loop, so it works the same whether the app runs alone or mounted in another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import httpx

from bot.sandbox.models import Update, Webhook

if TYPE_CHECKING:
    from bot.sandbox.state import SandboxState

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_LOGGER = logging.getLogger(__name__)


def start_webhook_sender(state: SandboxState, webhook: Webhook) -> None:
    """Replace any running sender by one for ``webhook`` (call with the lock held)."""
    state.cancel_webhook_sender()
    state.webhook_task = asyncio.get_running_loop().create_task(
        _deliver(state, webhook), name="sandbox-webhook"
    )


async def _next_update(state: SandboxState, webhook: Webhook) -> Update | None:
    """Wait for the oldest update the webhook wants; None once the webhook is gone."""
    async with state.changed:
        while True:
            if state.webhook is not webhook:
                return None
            while state.updates and not state.is_allowed(
                state.updates[0].kind, webhook.allowed_updates
            ):
                state.updates.popleft()  # never delivered to this webhook: dropped
            if state.updates:
                return state.updates[0]
            await state.changed.wait()


async def _post(client: httpx.AsyncClient, webhook: Webhook, update: Update) -> str | None:
    """Send one update; the error as getWebhookInfo reports it, or None on success."""
    headers = {SECRET_HEADER: webhook.secret_token} if webhook.secret_token else {}
    try:
        response = await client.post(webhook.url, json=update.to_api(), headers=headers)
    except httpx.TimeoutException:
        return "Read timeout expired"
    except httpx.ConnectError:
        return "Connection refused"
    except httpx.HTTPError as exc:
        return f"Connection failed: {exc.__class__.__name__}"
    if 200 <= response.status_code < 300:
        return None
    return f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"


async def _deliver(state: SandboxState, webhook: Webhook) -> None:
    pause = state.webhook_retry_initial
    async with httpx.AsyncClient(timeout=state.webhook_timeout) as client:
        while True:
            update = await _next_update(state, webhook)
            if update is None:
                return
            error = await _post(client, webhook, update)
            async with state.changed:
                if state.webhook is not webhook:
                    return
                if error is None:
                    if state.updates and state.updates[0] is update:
                        state.updates.popleft()
                    pause = state.webhook_retry_initial
                    state.notify()
                    continue
                webhook.last_error_date = int(time.time())
                webhook.last_error_message = error
            _LOGGER.info("webhook delivery of update %d failed: %s", update.update_id, error)
            await asyncio.sleep(pause)
            pause = min(pause * 2, state.webhook_retry_max)
