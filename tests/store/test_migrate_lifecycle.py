"""Migration 0007lifecycle moves Google's consents and channels into the provider-neutral
tables (provider "google"), and its downgrade moves them back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.store import migrate
from gateway.store.db import Store
from tests.store.test_migrate import fresh_store  # noqa: F401 - the fixture

_ROWS = [
    "INSERT INTO accounts (id, name, timezone, country, created_at) "
    "VALUES ('acc_1', 'A', 'UTC', 'GB', '2026-01-01 00:00:00')",
    "INSERT INTO users (id, account_id, name, timezone, locale, created_at, updated_at) "
    "VALUES ('usr_1', 'acc_1', 'U', 'UTC', 'en', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    "INSERT INTO sync_integrations (id, account_id, user_id, provider, secret, status, dirty, "
    "failures, counts, created_at, due_at) VALUES ('int_1', 'acc_1', 'usr_1', 'google', 'x', "
    "'active', false, 0, '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    "INSERT INTO google_consents (id, state_hash, account_id, user_id, integration_id, "
    "created_at, expires_at) VALUES ('gcs_1', 'h1', 'acc_1', 'usr_1', 'int_1', "
    "'2026-01-01 00:00:00', '2026-01-01 00:10:00')",
    "INSERT INTO google_channels (id, integration_id, calendar_id, channel_id, resource_id, "
    "token_hash, expires_at, created_at) VALUES ('gch_1', 'int_1', 'dr@example.com', 'c1', "
    "'r1', 't1', '2026-01-08 00:00:00', '2026-01-01 00:00:00')",
]


async def _alembic(store: Store, action: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        getattr(command, action)(migrate.alembic_config(connection), revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(run)


async def _rows(store: Store, query: str) -> list[tuple[object, ...]]:
    async with store.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(query))]


async def test_google_rows_move_to_the_neutral_tables_and_back(
    fresh_store: Store,  # noqa: F811
) -> None:
    await _alembic(fresh_store, "upgrade", "0005google")
    async with fresh_store.engine.begin() as conn:
        for statement in _ROWS:
            await conn.execute(text(statement))
    await _alembic(fresh_store, "upgrade", "0007lifecycle")
    consents = await _rows(fresh_store, "SELECT id, provider, state_hash FROM oauth_consents")
    assert consents == [("gcs_1", "google", "h1")]
    channels = await _rows(
        fresh_store, "SELECT id, provider, channel_id, token_hash FROM watch_channels"
    )
    assert channels == [("gch_1", "google", "c1", "t1")]

    await _alembic(fresh_store, "downgrade", "0005google")
    assert await _rows(fresh_store, "SELECT id, state_hash FROM google_consents") == [
        ("gcs_1", "h1")
    ]
    assert await _rows(fresh_store, "SELECT id, channel_id FROM google_channels") == [
        ("gch_1", "c1")
    ]
