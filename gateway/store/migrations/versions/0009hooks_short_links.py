"""hooks: short codes of client page links, for SMS

Revision ID: 0009hooks
Revises: 0007pages
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0009hooks"
down_revision = "0007pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_short_links",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("token", sa.String(length=1000), nullable=False),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_client_short_links_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_short_links_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_client_short_links")),
    )
    for column in ("account_id", "client_id", "expires_at"):
        op.create_index(
            op.f(f"ix_client_short_links_{column}"), "client_short_links", [column], unique=False
        )


def downgrade() -> None:
    for column in ("expires_at", "client_id", "account_id"):
        op.drop_index(op.f(f"ix_client_short_links_{column}"), table_name="client_short_links")
    op.drop_table("client_short_links")
