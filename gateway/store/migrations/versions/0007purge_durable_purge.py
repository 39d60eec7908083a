"""purge: purge receipts become the state of a durable purge job

Revision ID: 0007purge
Revises: 0005google
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0007purge"
down_revision = "0005google"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_purge_receipts") as batch:
        # Receipts written before the job existed were done in the request itself.
        batch.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="done")
        )
        batch.add_column(
            sa.Column("step", sa.String(length=16), nullable=False, server_default="local")
        )
        batch.add_column(
            sa.Column("delete_user", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("requested_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.alter_column(
            "purged_at", existing_type=gateway.store.types.UTCDateTime(timezone=True), nullable=True
        )
    op.execute("UPDATE sync_purge_receipts SET requested_at = purged_at")
    with op.batch_alter_table("sync_purge_receipts") as batch:
        batch.alter_column(
            "requested_at",
            existing_type=gateway.store.types.UTCDateTime(timezone=True),
            nullable=False,
        )


def downgrade() -> None:
    op.execute("DELETE FROM sync_purge_receipts WHERE purged_at IS NULL")
    with op.batch_alter_table("sync_purge_receipts") as batch:
        batch.alter_column(
            "purged_at",
            existing_type=gateway.store.types.UTCDateTime(timezone=True),
            nullable=False,
        )
        batch.drop_column("requested_at")
        batch.drop_column("delete_user")
        batch.drop_column("step")
        batch.drop_column("state")
