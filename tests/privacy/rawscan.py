"""Raw scans for erasure proofs: every row of every table as text, the SQLite database file
with its WAL, and a pg_dump of the test's PostgreSQL schema (None without pg_dump)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from sqlalchemy import select, text

from gateway.config import Settings
from gateway.privacy import datamap
from gateway.privacy.receipts import checkpoint
from gateway.store.db import Store
from tests.conftest import POSTGRES_URL


async def all_rows(store: Store) -> dict[str, list[str]]:
    """Every row of every table, as text."""
    out: dict[str, list[str]] = {}
    async with store.transaction() as session:
        for name in datamap.model_tables():
            rows = (await session.execute(select(datamap.table(name)))).all()
            out[name] = [repr(tuple(r)) for r in rows]
    return out


def raw_sqlite(settings: Settings) -> bytes:
    """The bytes of the SQLite database under the data folder, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in settings.data_dir.glob("calgate.db*"))


async def pg_dump(store: Store) -> bytes | None:
    """A data-only pg_dump of the store's schema (None when pg_dump is not installed)."""
    if shutil.which("pg_dump") is None:
        return None
    async with store.engine.connect() as conn:
        schema = str(await conn.scalar(text("SELECT current_schema()")))
    url = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    done = await asyncio.to_thread(
        subprocess.run,
        ["pg_dump", "--data-only", "--schema", schema, url],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


async def raw_files(store: Store, settings: Settings) -> bytes:
    """What a raw scan reads: on SQLite the database file with its WAL, after a checkpoint;
    on PostgreSQL a pg_dump of the schema (the test is skipped without pg_dump, its row scan
    being then the PostgreSQL check)."""
    if store.dialect == "sqlite":
        await checkpoint(store)
        return raw_sqlite(settings)
    dump = await pg_dump(store)
    if dump is None:
        pytest.skip("pg_dump is not installed: the row scan is the PostgreSQL check")
    return dump
