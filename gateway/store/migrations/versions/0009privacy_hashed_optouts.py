"""privacy: the SMS opt-out list keeps a keyed hash of each number, not the number

Revision ID: 0009privacy
Revises: 0006notify

The numbers already on the list are hashed (HMAC-SHA256 under a new random key, stored
encrypted under the secrets key in `stored_keys`): the migration reads the settings calgate
hands over (or the config file's) only when there are numbers to hash. A downgrade cannot turn
hashes back into numbers: it leaves the list empty.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

import gateway.store.types
from gateway import secrets

revision = "0009privacy"
down_revision = "0006notify"
branch_labels = None
depends_on = None

_TS = gateway.store.types.UTCDateTime(timezone=True)
_KEY_ID = "sms-optouts"  # gateway/notify/optouts.py KEY_ID


def _settings() -> Any:
    settings = context.config.attributes.get("settings")
    if settings is None:
        from gateway.config import load_settings

        settings = load_settings()
    return settings


def upgrade() -> None:
    keys = op.create_table(
        "stored_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_keys")),
    )
    conn = op.get_bind()
    old = sa.table("notify_sms_optouts", sa.column("phone"), sa.column("opted_out_at", _TS))
    rows = conn.execute(sa.select(old.c.phone, old.c.opted_out_at)).all()
    op.drop_table("notify_sms_optouts")
    optouts = op.create_table(
        "notify_sms_optouts",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("opted_out_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("phone_hash", name=op.f("pk_notify_sms_optouts")),
    )
    if not rows:
        return  # the key is made on first use
    settings = _settings()
    token = secrets.new_stored_key(settings)
    op.bulk_insert(
        keys, [{"id": _KEY_ID, "secret": token, "created_at": gateway.store.types.utcnow()}]
    )
    key = secrets.open_stored_key(settings, token)
    op.bulk_insert(
        optouts,
        [{"phone_hash": secrets.keyed_hash(key, phone), "opted_out_at": at} for phone, at in rows],
    )


def downgrade() -> None:
    op.drop_table("notify_sms_optouts")
    op.create_table(
        "notify_sms_optouts",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("opted_out_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_notify_sms_optouts")),
    )
    op.drop_table("stored_keys")
