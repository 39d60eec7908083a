"""Shared fixtures: settings, stores on SQLite and PostgreSQL, the app and an API client.

PostgreSQL tests use the server at CALGATE_TEST_POSTGRES_URL (default: 127.0.0.1:5432, database
`test`, trust auth), each in a schema of its own that is dropped afterwards. Where no server
answers they skip, saying so.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway import features
from gateway.app import create_app
from gateway.config import Settings
from gateway.store import migrate
from gateway.store.db import Store

POSTGRES_URL = os.environ.get(
    "CALGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
_pg_checked: dict[str, str | None] = {}


async def postgres_unavailable() -> str | None:
    """None when the test PostgreSQL answers, else the reason to skip."""
    if "reason" not in _pg_checked:
        engine = create_async_engine(POSTGRES_URL)
        try:
            async with asyncio.timeout(5), engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            _pg_checked["reason"] = None
        except Exception as exc:
            _pg_checked["reason"] = f"PostgreSQL not reachable at {POSTGRES_URL}: {exc!r}"
        finally:
            await engine.dispose()
    return _pg_checked["reason"]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: SQLite in `tmp_path` unless overridden; no config file is read."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/calgate.db",
        "data_dir": tmp_path,
        "public_url": "http://127.0.0.1:8400",
        # The shipped providers, the memory calendar and the consent test provider.
        "sync_connectors": "connectors.caldav, connectors.google, connectors.outlook, "
        "connectors.memory, "
        "tests.peers.consent_memory",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def _sqlite_store(settings: Settings) -> AsyncIterator[Store]:
    store = features.install(Store.from_url(settings.database_url, settings=settings))
    await migrate.upgrade(store)
    try:
        yield store
    finally:
        await store.close()


async def postgres_schema_store(
    settings: Settings | None = None, *, migrated: bool = True
) -> AsyncIterator[Store]:
    """A PostgreSQL store in a schema of its own, dropped afterwards (skips without a server)."""
    reason = await postgres_unavailable()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(
        POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}}, pool_size=10
    )
    store = features.install(Store(engine, settings))
    try:
        if migrated:
            await migrate.upgrade(store)
        yield store
    finally:
        await store.close()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def postgres_database(prefix: str) -> AsyncIterator[str]:
    """The URL of a PostgreSQL database of its own, dropped afterwards (skips without a server),
    for tests whose separate processes cannot be handed a per-test schema."""
    reason = await postgres_unavailable()
    if reason:
        pytest.skip(reason)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    """A migrated SQLite store in the test's own folder."""
    async for s in _sqlite_store(settings):
        yield s


@pytest.fixture
async def pg_store(settings: Settings) -> AsyncIterator[Store]:
    """A migrated PostgreSQL store in a schema of its own (skips without a server)."""
    async for s in postgres_schema_store(settings):
        yield s


@pytest.fixture(params=["sqlite", "postgres"])
async def any_store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    """The same test on both stores."""
    gen = _sqlite_store(settings) if request.param == "sqlite" else postgres_schema_store(settings)
    async for s in gen:
        yield s


@pytest.fixture
async def client(settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process (no ticks)."""
    app = create_app(settings, store, run_ticks=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
