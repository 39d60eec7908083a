"""Migrations: a fresh database upgrades to the heads, twice is a no-op; schema = models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

import gateway.store.all_models  # noqa: F401 - every table on Base.metadata
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.models import Account, Base
from tests.conftest import postgres_schema_store

# The foundation's own tables (gateway/store/models.py).
FOUNDATION = {
    mapper.class_.__table__.name
    for mapper in Base.registry.mappers
    if mapper.class_.__module__ == "gateway.store.models"
}


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store on an empty database (nothing migrated)."""
    if request.param == "sqlite":
        store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
        try:
            yield store
        finally:
            await store.close()
        return
    async for store in postgres_schema_store(migrated=False):
        yield store


async def _tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_fresh_database_upgrades_once(fresh_store):
    assert await migrate.current_revisions(fresh_store) == set()
    assert not await migrate.is_current(fresh_store)

    await migrate.upgrade(fresh_store)
    assert await migrate.is_current(fresh_store)
    assert await migrate.current_revisions(fresh_store) == migrate.head_revisions()
    tables = await _tables(fresh_store)
    assert tables >= FOUNDATION

    async with fresh_store.transaction() as session:
        session.add(Account(id="acc_kept", name="Kept", timezone="UTC", country="GB"))
    await migrate.upgrade(fresh_store)  # again: nothing to do, nothing lost
    assert await migrate.is_current(fresh_store)
    assert await _tables(fresh_store) == tables
    async with fresh_store.transaction() as session:
        assert await session.scalar(select(Account.name)) == "Kept"


async def test_schema_matches_every_model(any_store):
    """The migrations of every feature create what the models describe (a missing column, table
    or index fails here first)."""

    def diff(sync):
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with any_store.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert list(_flatten(changes)) == []


def _flatten(changes):
    for change in changes:
        if isinstance(change, list):  # column modifications come grouped per column
            yield from change
        else:
            yield change
