"""datalife: account states, API key activity, imported event UIDs, account deletion receipts

Revision ID: 0007datalife
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0007datalife"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = gateway.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
        )
        batch.add_column(sa.Column("status_reason", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("status_changed_at", _TS, nullable=True))
        batch.add_column(sa.Column("deletion_due_at", _TS, nullable=True))
    op.create_table(
        "api_key_activity",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("agent", sa.String(length=60), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=True),
        sa.Column("first_at", _TS, nullable=False),
        sa.Column("last_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_api_key_activity_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_api_key_activity_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key_activity")),
    )
    op.create_index("ix_api_key_activity_key_day", "api_key_activity", ["api_key_id", "day"])
    op.create_index(
        op.f("ix_api_key_activity_account_id"), "api_key_activity", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_api_key_activity_last_at"), "api_key_activity", ["last_at"], unique=False
    )
    op.create_table(
        "imported_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("uid_hash", sa.String(length=64), nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_imported_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_imported_events_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_events")),
        sa.UniqueConstraint("account_id", "uid_hash", name="uq_imported_events_uid"),
    )
    op.create_index(
        op.f("ix_imported_events_appointment_id"),
        "imported_events",
        ["appointment_id"],
        unique=False,
    )
    op.create_table(
        "account_deletion_receipts",
        sa.Column("deleted_account_id", sa.String(length=40), nullable=False),
        sa.Column("requested_at", _TS, nullable=True),
        sa.Column("deleted_at", _TS, nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("deleted_account_id", name=op.f("pk_account_deletion_receipts")),
    )


def downgrade() -> None:
    op.drop_table("account_deletion_receipts")
    op.drop_table("imported_events")
    op.drop_table("api_key_activity")
    with op.batch_alter_table("accounts") as batch:
        for column in ("deletion_due_at", "status_changed_at", "status_reason", "status"):
            batch.drop_column(column)
