"""The outbox: what the bot sends is written here first, then sent, retried and kept.

A message is put (``outbox_put``), claimed for sending (``outbox_claim``: no two senders get
the same row), then marked sent, put back for a later try (``outbox_retry``, with the reason),
or failed for good (``outbox_fail``: Telegram said it can never go, e.g. the bot was blocked);
nothing is ever deleted. Messages of one chat are claimed oldest first and a chat whose oldest
message waits holds back the rest, so a retried reply never arrives after the one that followed
it. A message with a ``dedupe_key`` is put once only, however often it is offered (an alert to
one leader, the answer to one report), which makes the jobs that offer them safe to repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.store.models import OUTBOX_PURPOSES, OutboundMessage
from bot.store.types import utcnow
from bot.store.views import NewOutbound, OutboundView

ERROR_MAX_CHARS = 2000


def outbound_view(m: Any) -> OutboundView:
    return OutboundView(
        id=m.id,
        channel=m.channel,
        chat_external_id=m.chat_external_id,
        text=m.text,
        reply_markup=m.reply_markup,
        reply_to=m.reply_to,
        purpose=m.purpose,
        dedupe_key=m.dedupe_key,
        status=m.status,
        attempts=m.attempts,
        next_attempt_at=m.next_attempt_at,
        last_error=m.last_error,
        created_at=m.created_at,
        sent_at=m.sent_at,
        external_message_id=m.external_message_id,
    )


class Outbox:
    """Mixed into ``Store``: needs ``run_in`` and ``dialect`` from ``Transactions``."""

    def outbox_put(self, items: Iterable[NewOutbound]) -> list[OutboundView]:
        """Add messages, in order; one whose ``dedupe_key`` is known already is not added again
        (its existing row is returned instead)."""
        items = list(items)
        for item in items:
            if item.purpose not in OUTBOX_PURPOSES:
                raise ValueError(f"purpose must be one of {OUTBOX_PURPOSES}, not {item.purpose!r}")
            if not item.text.strip():
                raise ValueError("an outgoing message needs text")

        def work(session: Session) -> list[OutboundView]:
            out = []
            for item in items:
                if item.dedupe_key is not None:
                    known = session.execute(
                        sa.select(OutboundMessage).where(
                            OutboundMessage.dedupe_key == item.dedupe_key
                        )
                    ).scalar_one_or_none()
                    if known is not None:
                        out.append(outbound_view(known))
                        continue
                row = OutboundMessage(
                    channel=item.channel,
                    chat_external_id=item.chat_external_id,
                    text=item.text,
                    reply_markup=item.reply_markup,
                    reply_to=item.reply_to,
                    purpose=item.purpose,
                    dedupe_key=item.dedupe_key,
                    status="pending",
                    attempts=0,
                    next_attempt_at=utcnow(),
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
                out.append(outbound_view(row))
            return out

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def outbox_claim(
        self, limit: int = 100, chat_external_id: str | None = None
    ) -> list[OutboundView]:
        """Take due messages for sending: per chat, the oldest pending ones up to the first
        that is not yet due (so a chat's messages keep their order); oldest chats first."""

        def work(session: Session) -> list[OutboundView]:
            table = OutboundMessage.__table__
            now = utcnow()
            query = sa.select(
                table.c.id, table.c.chat_external_id, table.c.next_attempt_at, table.c.status
            ).where(table.c.status.in_(("pending", "sending")))
            if chat_external_id is not None:
                query = query.where(table.c.chat_external_id == chat_external_id)
            query = query.order_by(table.c.id)
            if self.dialect == "postgresql":  # type: ignore[attr-defined]
                # Claimers take turns: one that read a chat's rows before another's claim
                # committed would otherwise take that chat's next message out of order.
                query = query.with_for_update()
            rows = session.execute(query).all()
            blocked: set[str] = set()
            ids: list[int] = []
            for row_id, chat, due, status in rows:
                if chat in blocked:
                    continue
                if status == "sending" or due > now:  # in flight, or waiting to be retried
                    blocked.add(chat)
                    continue
                ids.append(row_id)
                if len(ids) >= limit:
                    break
            if not ids:
                return []
            claimed = session.execute(
                sa.update(table)
                .where(table.c.id.in_(ids), table.c.status == "pending")
                .values(status="sending", claimed_at=now)
                .returning(*table.c)
            ).all()
            return sorted((outbound_view(r) for r in claimed), key=lambda m: m.id)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def _outbox_update(self, ids: Iterable[int], **values: Any) -> None:
        ids = list(ids)

        def work(session: Session) -> None:
            session.execute(
                sa.update(OutboundMessage).where(OutboundMessage.id.in_(ids)).values(**values)
            )

        if ids:
            self.run_in(work, write=True)  # type: ignore[attr-defined]

    def outbox_sent(self, message_id: int, external_message_id: int | None) -> None:
        self._outbox_update(
            [message_id],
            status="sent",
            sent_at=utcnow(),
            external_message_id=external_message_id,
            attempts=OutboundMessage.attempts + 1,
        )

    def outbox_retry(self, message_id: int, error: str, delay_seconds: float) -> None:
        """The send failed for now: try again after ``delay_seconds``."""
        self._outbox_update(
            [message_id],
            status="pending",
            last_error=error[:ERROR_MAX_CHARS],
            attempts=OutboundMessage.attempts + 1,
            next_attempt_at=utcnow() + timedelta(seconds=delay_seconds),
        )

    def outbox_release(self, message_ids: Iterable[int]) -> None:
        """Put claimed messages back untried (an earlier message of their chat must go first)."""
        self._outbox_update(message_ids, status="pending")

    def outbox_move(self, old_chat: str, new_chat: str) -> None:
        """A group became a supergroup: its unsent messages go to the new chat id."""

        def work(session: Session) -> None:
            session.execute(
                sa.update(OutboundMessage)
                .where(
                    OutboundMessage.chat_external_id == old_chat,
                    OutboundMessage.status.in_(("pending", "sending")),
                )
                .values(chat_external_id=new_chat)
            )

        self.run_in(work, write=True)  # type: ignore[attr-defined]

    def outbox_fail(self, message_id: int, error: str) -> None:
        """Telegram will never take this message (blocked, chat gone, refused): kept, not sent."""
        self._outbox_update(
            [message_id],
            status="failed",
            last_error=error[:ERROR_MAX_CHARS],
            attempts=OutboundMessage.attempts + 1,
        )

    def outbox_requeue_stale(self, older_than_seconds: float) -> int:
        """Messages left claimed by a sender that stopped (a crash) go back to pending."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)

        def work(session: Session) -> int:
            result = session.execute(
                sa.update(OutboundMessage)
                .where(OutboundMessage.status == "sending", OutboundMessage.claimed_at < cutoff)
                .values(status="pending")
            )
            return int(result.rowcount or 0)

        return self.run_in(work, write=True)  # type: ignore[attr-defined]

    def outbox_get(self, message_id: int) -> OutboundView | None:
        def work(session: Session) -> OutboundView | None:
            row = session.get(OutboundMessage, message_id)
            return outbound_view(row) if row is not None else None

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def outbox_counts(self) -> dict[str, int]:
        """How many messages are in each status."""

        def work(session: Session) -> dict[str, int]:
            rows = session.execute(
                sa.select(OutboundMessage.status, sa.func.count()).group_by(OutboundMessage.status)
            ).all()
            return {status: int(count) for status, count in rows}

        return self.run_in(work, write=False)  # type: ignore[attr-defined]
