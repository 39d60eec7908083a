"""feeds: private iCal feeds and their access record

Revision ID: 0002feeds
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0002feeds"
down_revision = "0001"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, gateway.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("client_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("privacy", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body_etag", sa.String(length=80), nullable=True),
        _when("body_modified_at", True),
        sa.Column("fetch_count", sa.Integer(), nullable=False),
        _when("last_fetched_at", True),
        _when("created_at", False),
        _when("updated_at", False),
        _when("rotated_at", True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_feeds_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_feeds_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feeds_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_feeds_token_hash")),
    )
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feeds_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feeds_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feeds_user_id"), ["user_id"], unique=False)

    op.create_table(
        "feed_access",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("feed_id", sa.String(length=40), nullable=False),
        _when("bucket", False),
        sa.Column("agent", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=True),
        sa.Column("fetches", sa.Integer(), nullable=False),
        _when("last_at", False),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["feeds.id"],
            name=op.f("fk_feed_access_feed_id_feeds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_access")),
    )
    with op.batch_alter_table("feed_access", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_access_bucket"), ["bucket"], unique=False)
        batch_op.create_index("ix_feed_access_feed_bucket", ["feed_id", "bucket"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feed_access", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_access_feed_bucket")
        batch_op.drop_index(batch_op.f("ix_feed_access_bucket"))
    op.drop_table("feed_access")
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feeds_user_id"))
        batch_op.drop_index(batch_op.f("ix_feeds_client_id"))
        batch_op.drop_index(batch_op.f("ix_feeds_account_id"))
    op.drop_table("feeds")
