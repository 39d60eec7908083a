"""scale: the push-channel tick's index, and the feed-change signal on PostgreSQL

Revision ID: 0009scale
Revises: 0002feeds, 0007datalife (depends on 0004sync)
"""

from __future__ import annotations

from alembic import op

revision = "0009scale"
# Joins the feeds and account-life branches: the signal watches feeds and accounts.status.
down_revision = ("0002feeds", "0007datalife")
branch_labels = None
depends_on = "0004sync"


def upgrade() -> None:
    op.create_index("ix_sync_integrations_claim", "sync_integrations", ["status", "due_at"])
    op.create_index(
        "ix_sync_integrations_provider_status", "sync_integrations", ["provider", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_sync_integrations_claim", table_name="sync_integrations")
    op.drop_index("ix_sync_integrations_provider_status", table_name="sync_integrations")
