"""notify: an account's own SMS sender

Revision ID: 0006notify
Revises: 0003notify
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006notify"
down_revision = "0003notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "notify_account_settings",
        sa.Column("sms_sender", sa.String(length=34), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("notify_account_settings") as batch:
        batch.drop_column("sms_sender")
