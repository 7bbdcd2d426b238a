"""The outbox: every message the bot sends is written first, then sent, retried and kept.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("chat_external_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_markup", sa.JSON(), nullable=True),
        sa.Column("reply_to", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("claimed_at", _timestamp(), nullable=True),
        sa.Column("sent_at", _timestamp(), nullable=True),
        sa.Column("external_message_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('reply', 'warning', 'alert', 'answer')",
            name=op.f("ck_outbound_messages_purpose"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed')",
            name=op.f("ck_outbound_messages_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbound_messages_dedupe_key")),
    )
    op.create_index(
        op.f("ix_outbound_messages_status_next_attempt_at"),
        "outbound_messages",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        op.f("ix_outbound_messages_chat_external_id_status"),
        "outbound_messages",
        ["chat_external_id", "status"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_outbound_messages_chat_external_id_status"), table_name="outbound_messages"
    )
    op.drop_index(
        op.f("ix_outbound_messages_status_next_attempt_at"), table_name="outbound_messages"
    )
    op.drop_table("outbound_messages")
