"""purge: purge receipts become the state of a durable purge job; erasure receipts and the
remote copies an erasure still has to delete

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

    op.create_table(
        "privacy_erasures",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("requested_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_privacy_erasures_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_erasures")),
    )
    with op.batch_alter_table("privacy_erasures") as batch:
        batch.create_index(batch.f("ix_privacy_erasures_account_id"), ["account_id"])
        batch.create_index(batch.f("ix_privacy_erasures_subject_id"), ["subject_id"])
    op.create_table(
        "privacy_erasure_copies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("erasure_id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("href", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["erasure_id"],
            ["privacy_erasures.id"],
            name=op.f("fk_privacy_erasure_copies_erasure_id_privacy_erasures"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["sync_integrations.id"],
            name=op.f("fk_privacy_erasure_copies_integration_id_sync_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_erasure_copies")),
    )
    with op.batch_alter_table("privacy_erasure_copies") as batch:
        batch.create_index(batch.f("ix_privacy_erasure_copies_erasure_id"), ["erasure_id"])
        batch.create_index(batch.f("ix_privacy_erasure_copies_integration_id"), ["integration_id"])


def downgrade() -> None:
    op.drop_table("privacy_erasure_copies")
    op.drop_table("privacy_erasures")
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
