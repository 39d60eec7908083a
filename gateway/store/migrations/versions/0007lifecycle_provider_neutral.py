"""lifecycle: provider-neutral consents, push channels and shared provider state

Moves the rows of google_consents and google_channels into oauth_consents and watch_channels
(provider "google"), then drops the Google-only tables.

Revision ID: 0007lifecycle
Revises: 0005google
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.types

revision = "0007lifecycle"
down_revision = "0005google"
branch_labels = None
depends_on = None

_WHEN = gateway.store.types.UTCDateTime(timezone=True)

# PostgreSQL: book one call in a request budget in one round trip (gateway/sync/shared.py).
# The advisory lock makes bookers of one budget take turns; each statement after it sees what
# the previous holder committed (a VOLATILE function takes a new snapshot per statement).
BOOK_FUNCTION = """
CREATE FUNCTION calgate_book_call(p_provider text, p_budget text, p_limit integer,
                                  p_window bigint)
RETURNS TABLE (at_ms bigint, now_ms bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now bigint;
    v_nth bigint;
    v_at bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_provider || '/' || p_budget, 0));
    v_now := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    DELETE FROM provider_calls AS c
    WHERE c.provider = p_provider AND c.budget = p_budget AND c.at_ms <= v_now - p_window;
    SELECT c.at_ms INTO v_nth FROM provider_calls AS c
    WHERE c.provider = p_provider AND c.budget = p_budget
    ORDER BY c.at_ms DESC OFFSET p_limit - 1 LIMIT 1;
    v_at := GREATEST(v_now, COALESCE(v_nth + p_window, 0));
    INSERT INTO provider_calls (provider, budget, at_ms) VALUES (p_provider, p_budget, v_at);
    RETURN QUERY SELECT v_at, v_now;
END
$$
"""


def _cascade(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _consents(table: str, *, provider: bool) -> None:
    """The consents table: neutral (with a provider column) or Google's own (0005google)."""
    op.create_table(
        table,
        sa.Column("id", sa.String(length=40), nullable=False),
        *([sa.Column("provider", sa.String(length=32), nullable=False)] if provider else []),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        _cascade(table, "account_id", "accounts"),
        _cascade(table, "user_id", "users"),
        _cascade(table, "integration_id", "sync_integrations"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("state_hash", name=op.f(f"uq_{table}_state_hash")),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in ("account_id", "user_id", "integration_id"):
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column])


def _channels(table: str, *, provider: bool) -> None:
    """The push channels table: neutral (with a provider column) or Google's own."""
    op.create_table(
        table,
        sa.Column("id", sa.String(length=40), nullable=False),
        *([sa.Column("provider", sa.String(length=32), nullable=False)] if provider else []),
        sa.Column("integration_id", sa.String(length=40), nullable=False),
        sa.Column("calendar_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.String(length=255 if provider else 64), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("last_message_at", _WHEN, nullable=True),
        _cascade(table, "integration_id", "sync_integrations"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("channel_id", name=op.f(f"uq_{table}_channel_id")),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_integration_id"), ["integration_id"])


def upgrade() -> None:
    _consents("oauth_consents", provider=True)
    _channels("watch_channels", provider=True)
    op.create_table(
        "provider_state",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("provider", "key", name=op.f("pk_provider_state")),
    )
    op.create_table(
        "provider_calls",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("budget", sa.String(length=200), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_calls")),
    )
    op.create_index("ix_provider_calls_budget", "provider_calls", ["provider", "budget", "at_ms"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(BOOK_FUNCTION)
    op.execute(
        "INSERT INTO oauth_consents (id, provider, state_hash, account_id, user_id, "
        "integration_id, created_at, expires_at, used_at) "
        "SELECT id, 'google', state_hash, account_id, user_id, integration_id, created_at, "
        "expires_at, used_at FROM google_consents"
    )
    op.execute(
        "INSERT INTO watch_channels (id, provider, integration_id, calendar_id, channel_id, "
        "resource_id, token_hash, expires_at, created_at, last_message_at) "
        "SELECT id, 'google', integration_id, calendar_id, channel_id, resource_id, token_hash, "
        "expires_at, created_at, last_message_at FROM google_channels"
    )
    op.drop_table("google_channels")
    op.drop_table("google_consents")


def downgrade() -> None:
    _consents("google_consents", provider=False)
    _channels("google_channels", provider=False)
    op.execute(
        "INSERT INTO google_consents (id, state_hash, account_id, user_id, integration_id, "
        "created_at, expires_at, used_at) SELECT id, state_hash, account_id, user_id, "
        "integration_id, created_at, expires_at, used_at FROM oauth_consents "
        "WHERE provider = 'google'"
    )
    op.execute(
        "INSERT INTO google_channels (id, integration_id, calendar_id, channel_id, resource_id, "
        "token_hash, expires_at, created_at, last_message_at) SELECT id, integration_id, "
        "calendar_id, channel_id, resource_id, token_hash, expires_at, created_at, "
        "last_message_at FROM watch_channels WHERE provider = 'google'"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION calgate_book_call(text, text, integer, bigint)")
    op.drop_index("ix_provider_calls_budget", table_name="provider_calls")
    for table in ("provider_calls", "provider_state", "watch_channels", "oauth_consents"):
        op.drop_table(table)
