"""notifications: settings, template overrides, SMS opt-outs, outbox and delivery log

Revision ID: 0003notify
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0003notify"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_sms_optouts",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("opted_out_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_notify_sms_optouts")),
    )
    op.create_table(
        "notify_account_settings",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("reminder_minutes", sa.JSON(), nullable=True),
        sa.Column("late_policy", sa.String(length=8), nullable=True),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("quiet_email", sa.Boolean(), nullable=True),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.Column("sms_enabled", sa.Boolean(), nullable=False),
        sa.Column("notify_practitioner", sa.Boolean(), nullable=False),
        sa.Column("sms_countries", sa.JSON(), nullable=True),
        sa.Column("sender_name", sa.String(length=200), nullable=True),
        sa.Column("email_from", sa.String(length=320), nullable=True),
        sa.Column("email_reply_to", sa.String(length=320), nullable=True),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notify_account_settings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_notify_account_settings")),
    )
    op.create_table(
        "notify_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("part", sa.String(length=8), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notify_templates_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_templates")),
        sa.UniqueConstraint(
            "account_id", "channel", "kind", "locale", "part", name="uq_notify_templates_key"
        ),
    )
    op.create_table(
        "notify_client_settings",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("reminder_minutes", sa.JSON(), nullable=False),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notify_client_settings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_notify_client_settings_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_notify_client_settings")),
    )
    op.create_index(
        op.f("ix_notify_client_settings_account_id"),
        "notify_client_settings",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=False),
        sa.Column("recipient_type", sa.String(length=8), nullable=False),
        sa.Column("recipient_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("idem_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("planned_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("sent_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=80), nullable=True),
        sa.Column(
            "lease_expires_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notify_outbox_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_notify_outbox_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_outbox")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_notify_outbox_idem_key")),
    )
    op.create_index(
        op.f("ix_notify_outbox_account_id"), "notify_outbox", ["account_id"], unique=False
    )
    op.create_index(
        "ix_notify_outbox_appointment", "notify_outbox", ["appointment_id", "status"], unique=False
    )
    op.create_index("ix_notify_outbox_claim", "notify_outbox", ["status", "due_at"], unique=False)
    op.create_index(op.f("ix_notify_outbox_due_at"), "notify_outbox", ["due_at"], unique=False)
    op.create_index(
        op.f("ix_notify_outbox_provider_id"), "notify_outbox", ["provider_id"], unique=False
    )
    op.create_table(
        "notify_delivery_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("outbox_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["notify_outbox.id"],
            name=op.f("fk_notify_delivery_log_outbox_id_notify_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_delivery_log")),
    )
    op.create_index(
        "ix_notify_delivery_log_outbox",
        "notify_delivery_log",
        ["outbox_id", "started_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notify_delivery_log_outbox", table_name="notify_delivery_log")
    op.drop_table("notify_delivery_log")
    op.drop_index(op.f("ix_notify_outbox_provider_id"), table_name="notify_outbox")
    op.drop_index(op.f("ix_notify_outbox_due_at"), table_name="notify_outbox")
    op.drop_index("ix_notify_outbox_claim", table_name="notify_outbox")
    op.drop_index("ix_notify_outbox_appointment", table_name="notify_outbox")
    op.drop_index(op.f("ix_notify_outbox_account_id"), table_name="notify_outbox")
    op.drop_table("notify_outbox")
    op.drop_index(op.f("ix_notify_client_settings_account_id"), table_name="notify_client_settings")
    op.drop_table("notify_client_settings")
    op.drop_table("notify_templates")
    op.drop_table("notify_account_settings")
    op.drop_table("notify_sms_optouts")
