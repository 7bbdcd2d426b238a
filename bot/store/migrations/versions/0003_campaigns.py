"""Campaigns and case data: imported cases, campaigns, their occurrences and deliveries; groups
registered to the grid with an opt-out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("incomplete", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_imports")),
    )
    with op.batch_alter_table("case_imports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_imports_file_sha256"), ["file_sha256"], unique=False
        )

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("audience_tags", sa.JSON(), nullable=False),
        sa.Column("scam_types", sa.JSON(), nullable=False),
        sa.Column("template_key", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("schedule_kind", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("starts_at", _timestamp(), nullable=False),
        sa.Column("ends_at", _timestamp(), nullable=True),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("weekly_budget", sa.Integer(), nullable=False),
        sa.Column("grace_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.CheckConstraint(
            "schedule_kind IN ('once', 'recurring', 'peak')",
            name=op.f("ck_campaigns_schedule_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'ended', 'cancelled')",
            name=op.f("ck_campaigns_status"),
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_campaigns_area_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_campaigns_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_status"), ["status"], unique=False)

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("row_key", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=True),
        sa.Column("happened_at", _timestamp(), nullable=True),
        sa.Column("scam_type", sa.String(length=32), nullable=True),
        sa.Column("scam_type_source", sa.String(length=16), nullable=True),
        sa.Column("loss", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("age_group", sa.String(length=32), nullable=True),
        sa.Column("gender", sa.String(length=8), nullable=True),
        sa.Column("occupation", sa.String(length=64), nullable=True),
        sa.Column("place", sa.String(length=255), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], name=op.f("fk_cases_area_id_areas")),
        sa.ForeignKeyConstraint(
            ["import_id"], ["case_imports.id"], name=op.f("fk_cases_import_id_case_imports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("row_key", name=op.f("uq_cases_row_key")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_import_id"), ["import_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cases_scam_type_happened_at"),
            ["scam_type", "happened_at"],
            unique=False,
        )

    op.create_table(
        "campaign_occurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("due_at", _timestamp(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("planned_at", _timestamp(), nullable=False),
        sa.CheckConstraint(
            "status IN ('planned', 'missed')", name=op.f("ck_campaign_occurrences_status")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_occurrences_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_occurrences")),
        sa.UniqueConstraint(
            "campaign_id", "due_at", name=op.f("uq_campaign_occurrences_campaign_id_due_at")
        ),
    )
    op.create_table(
        "campaign_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.Column("claimed_at", _timestamp(), nullable=True),
        sa.Column("sent_at", _timestamp(), nullable=True),
        sa.Column("external_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'skipped')",
            name=op.f("ck_campaign_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_deliveries_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_campaign_deliveries_chat_id_chats")
        ),
        sa.ForeignKeyConstraint(
            ["occurrence_id"],
            ["campaign_occurrences.id"],
            name=op.f("fk_campaign_deliveries_occurrence_id_campaign_occurrences"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_deliveries")),
        sa.UniqueConstraint(
            "occurrence_id", "chat_id", name=op.f("uq_campaign_deliveries_occurrence_id_chat_id")
        ),
    )
    with op.batch_alter_table("campaign_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_deliveries_campaign_id_status"),
            ["campaign_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_deliveries_chat_id_status_sent_at"),
            ["chat_id", "status", "sent_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_deliveries_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("registered_at", _timestamp(), nullable=True))
        batch_op.add_column(
            sa.Column("campaigns_opt_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("opted_out_at", _timestamp(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_chats_registered_by_users"), "users", ["registered_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_chats_registered_by_users"), type_="foreignkey")
        batch_op.drop_column("opted_out_at")
        batch_op.drop_column("campaigns_opt_out")
        batch_op.drop_column("registered_at")
        batch_op.drop_column("registered_by")

    with op.batch_alter_table("campaign_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_deliveries_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_deliveries_chat_id_status_sent_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_deliveries_campaign_id_status"))

    op.drop_table("campaign_deliveries")
    op.drop_table("campaign_occurrences")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_scam_type_happened_at"))
        batch_op.drop_index(batch_op.f("ix_cases_import_id"))

    op.drop_table("cases")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_status"))

    op.drop_table("campaigns")
    with op.batch_alter_table("case_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_imports_file_sha256"))

    op.drop_table("case_imports")
