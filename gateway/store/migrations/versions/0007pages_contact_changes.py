"""pages: changes clients make on their own page, and an account's page settings

Revision ID: 0007pages
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0007pages"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_changes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("changed_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contact_changes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_contact_changes_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_changes")),
    )
    op.create_index(
        op.f("ix_contact_changes_account_id"), "contact_changes", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_contact_changes_client_id"), "contact_changes", ["client_id"], unique=False
    )
    op.create_table(
        "page_settings",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("return_url", sa.String(length=2000), nullable=True),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_page_settings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_page_settings")),
    )


def downgrade() -> None:
    op.drop_table("page_settings")
    op.drop_index(op.f("ix_contact_changes_client_id"), table_name="contact_changes")
    op.drop_index(op.f("ix_contact_changes_account_id"), table_name="contact_changes")
    op.drop_table("contact_changes")
