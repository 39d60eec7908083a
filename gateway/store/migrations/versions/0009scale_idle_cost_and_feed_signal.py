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


# PostgreSQL only: a NOTIFY on channel `calgate_feeds` inside every transaction that changes
# what a feed token resolves to (its hash, version or account; the account's state), sent by
# PostgreSQL at commit. The payload is the token hash concerned ("*": all of them). Processes
# keep their token lookups in memory until told (gateway/feeds/pg_signal.py). SQLite needs
# nothing: its `PRAGMA data_version` moves on any commit.
SIGNAL_FUNCTION = """
CREATE OR REPLACE FUNCTION calgate_feed_signal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'accounts' THEN
        PERFORM pg_notify('calgate_feeds', '*');
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('calgate_feeds', OLD.token_hash);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('calgate_feeds', NEW.token_hash);
    END IF;
    RETURN NULL;
END
$$
"""
SIGNAL_TRIGGERS = (
    "CREATE TRIGGER calgate_feed_signal"
    " AFTER INSERT OR DELETE OR UPDATE OF token_hash, version, account_id ON feeds"
    " FOR EACH ROW EXECUTE FUNCTION calgate_feed_signal()",
    "CREATE TRIGGER calgate_feed_signal AFTER DELETE OR UPDATE OF status ON accounts"
    " FOR EACH ROW EXECUTE FUNCTION calgate_feed_signal()",
)


def upgrade() -> None:
    op.create_index("ix_sync_integrations_claim", "sync_integrations", ["status", "due_at"])
    op.create_index(
        "ix_sync_integrations_provider_status", "sync_integrations", ["provider", "status"]
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(SIGNAL_FUNCTION)
        for statement in SIGNAL_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS calgate_feed_signal ON accounts")
        op.execute("DROP TRIGGER IF EXISTS calgate_feed_signal ON feeds")
        op.execute("DROP FUNCTION IF EXISTS calgate_feed_signal()")
    op.drop_index("ix_sync_integrations_claim", table_name="sync_integrations")
    op.drop_index("ix_sync_integrations_provider_status", table_name="sync_integrations")
