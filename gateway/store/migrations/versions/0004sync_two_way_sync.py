"""sync: integrations, calendars and cursors, mappings, busy blocks, log, purge receipts

Revision ID: 0004sync
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0004sync"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_purge_receipts",
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("remote_removed", sa.Boolean(), nullable=False),
        sa.Column("purged_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sync_purge_receipts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_sync_purge_receipts")),
    )
    with op.batch_alter_table("sync_purge_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_purge_receipts_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "sync_integrations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("server_url", sa.Text(), nullable=True),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_sync_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=80), nullable=True),
        sa.Column(
            "lease_expires_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sync_integrations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sync_integrations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_integrations")),
    )
    with op.batch_alter_table("sync_integrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_integrations_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sync_integrations_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_integrations_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sync_calendars",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("write", sa.Boolean(), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("full_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["sync_integrations.id"],
            name=op.f("fk_sync_calendars_integration_id_sync_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_calendars")),
        sa.UniqueConstraint("integration_id", "remote_id", name="uq_sync_calendar"),
    )
    with op.batch_alter_table("sync_calendars", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_calendars_integration_id"), ["integration_id"], unique=False
        )

    op.create_table(
        "sync_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["sync_integrations.id"],
            name=op.f("fk_sync_log_integration_id_sync_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_log")),
    )
    with op.batch_alter_table("sync_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_log_integration_id"), ["integration_id"], unique=False
        )

    op.create_table(
        "sync_mappings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=False),
        sa.Column("href", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("written_hash", sa.String(length=64), nullable=False),
        sa.Column("remote_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_sync_mappings_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["sync_integrations.id"],
            name=op.f("fk_sync_mappings_integration_id_sync_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_mappings")),
        sa.UniqueConstraint("integration_id", "appointment_id", name="uq_sync_mapping_appointment"),
    )
    with op.batch_alter_table("sync_mappings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_mappings_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sync_mappings_integration_id"), ["integration_id"], unique=False
        )

    op.create_table(
        "sync_busy_blocks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("calendar_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("href", sa.Text(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=False),
        sa.Column("start_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["sync_calendars.id"],
            name=op.f("fk_sync_busy_blocks_calendar_id_sync_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["sync_integrations.id"],
            name=op.f("fk_sync_busy_blocks_integration_id_sync_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_busy_blocks")),
    )
    with op.batch_alter_table("sync_busy_blocks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_busy_blocks_calendar_id"), ["calendar_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sync_busy_blocks_integration_id"), ["integration_id"], unique=False
        )
        batch_op.create_index("ix_sync_busy_user_start", ["user_id", "start_at"], unique=False)
        batch_op.create_index("ix_sync_busy_calendar_href", ["calendar_id", "href"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_busy_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_busy_calendar_href")
        batch_op.drop_index("ix_sync_busy_user_start")
        batch_op.drop_index(batch_op.f("ix_sync_busy_blocks_integration_id"))
        batch_op.drop_index(batch_op.f("ix_sync_busy_blocks_calendar_id"))

    op.drop_table("sync_busy_blocks")
    with op.batch_alter_table("sync_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_mappings_integration_id"))
        batch_op.drop_index(batch_op.f("ix_sync_mappings_appointment_id"))

    op.drop_table("sync_mappings")
    with op.batch_alter_table("sync_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_log_integration_id"))

    op.drop_table("sync_log")
    with op.batch_alter_table("sync_calendars", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_calendars_integration_id"))

    op.drop_table("sync_calendars")
    with op.batch_alter_table("sync_integrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_integrations_user_id"))
        batch_op.drop_index(batch_op.f("ix_sync_integrations_due_at"))
        batch_op.drop_index(batch_op.f("ix_sync_integrations_account_id"))

    op.drop_table("sync_integrations")
    with op.batch_alter_table("sync_purge_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_purge_receipts_account_id"))

    op.drop_table("sync_purge_receipts")
