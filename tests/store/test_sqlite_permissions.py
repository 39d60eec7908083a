"""The SQLite files hold names, emails, phones and notes: only the daemon's user reads them,
whatever the umask (issue 14: 6)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.store import migrate
from gateway.store.db import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022])
async def test_var_is_0700_and_database_wal_shm_are_0600(tmp_path: Path, umask: int) -> None:
    database = tmp_path / "var" / "calgate.db"
    old = os.umask(umask)
    try:
        store = Store.from_url(f"sqlite+aiosqlite:///{database}")
        await migrate.upgrade(store)
        async with store.transaction() as session:
            await session.execute(text("CREATE TABLE probe (x TEXT)"))
            await session.execute(text("INSERT INTO probe VALUES ('personal data')"))
        # WAL mode keeps both files while a connection is open (_mode fails when missing).
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        assert _mode(database.parent) == 0o700
        assert {p.name: _mode(p) for p in (database, wal, shm)} == {
            p.name: 0o600 for p in (database, wal, shm)
        }
        await store.close()
    finally:
        os.umask(old)


async def test_files_left_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    database = tmp_path / "calgate.db"
    os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o644))
    os.chmod(database, 0o644)
    store = Store.from_url(f"sqlite+aiosqlite:///{database}")
    async with store.transaction() as session:
        await session.execute(text("SELECT 1"))
    assert _mode(database) == 0o600
    await store.close()
