"""google: pending consents (OAuth state) and push channels

Revision ID: 0005google
Revises: 0004sync
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0005google"
down_revision = "0004sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "google_consents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_google_consents_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_google_consents_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["sync_integrations.id"],
            name=op.f("fk_google_consents_integration_id_sync_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_consents")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_google_consents_state_hash")),
    )
    with op.batch_alter_table("google_consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_google_consents_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_google_consents_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_google_consents_integration_id"), ["integration_id"], unique=False
        )

    op.create_table(
        "google_channels",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("calendar_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["sync_integrations.id"],
            name=op.f("fk_google_channels_integration_id_sync_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_channels")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_google_channels_channel_id")),
    )
    with op.batch_alter_table("google_channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_google_channels_integration_id"), ["integration_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("google_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_google_channels_integration_id"))
    op.drop_table("google_channels")
    with op.batch_alter_table("google_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_google_consents_integration_id"))
        batch_op.drop_index(batch_op.f("ix_google_consents_user_id"))
        batch_op.drop_index(batch_op.f("ix_google_consents_account_id"))
    op.drop_table("google_consents")
