"""Migration 0009privacy replaces each number on the SMS opt-out list by its keyed hash (the
one the daemon then looks up), on SQLite and PostgreSQL; its downgrade cannot bring numbers
back and leaves the list empty."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.notify import optouts
from gateway.store import migrate
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.store.test_migrate import fresh_store  # noqa: F401 - the fixture
from tests.store.test_migrate_lifecycle import _rows

NUMBERS = ("+447911123456", "+33612345678")


async def _alembic(store: Store, action: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        getattr(command, action)(migrate.alembic_config(connection, store.settings), revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(run)


async def test_numbers_become_keyed_hashes(
    fresh_store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = fresh_store
    store.settings = make_settings(tmp_path)
    await _alembic(store, "upgrade", "0006notify")
    async with store.engine.begin() as conn:
        for number in NUMBERS:
            await conn.execute(
                text(
                    "INSERT INTO notify_sms_optouts (phone, opted_out_at) "
                    f"VALUES ('{number}', '2026-01-01 00:00:00')"
                )
            )
    await _alembic(store, "upgrade", "0009privacy")

    stored = await _rows(store, "SELECT phone_hash FROM notify_sms_optouts")
    assert len(stored) == 2
    assert not [n for n in NUMBERS for (h,) in stored if n in str(h) or n[1:] in str(h)]
    async with store.transaction() as session:
        for number in NUMBERS:
            assert await optouts.is_opted_out(session, number), number
        assert not await optouts.is_opted_out(session, "+442071838751")

    await _alembic(store, "downgrade", "0006notify")
    assert await _rows(store, "SELECT phone FROM notify_sms_optouts") == []
    await migrate.upgrade(store)
    assert await migrate.is_current(store)
