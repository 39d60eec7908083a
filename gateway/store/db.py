"""The engine and sessions.

SQLite (embedded default): WAL, foreign keys, ``secure_delete`` (deleted personal data is
overwritten, not left in free pages), and every transaction opened with ``BEGIN IMMEDIATE`` so
that writers queue on the busy timeout instead of failing when a read turns into a write. That
also makes SQLite a single-writer store, which is what the lease claims rely on there.
PostgreSQL: claims use ``FOR UPDATE SKIP LOCKED`` and any number of processes share the work.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gateway.config import Settings
from gateway.store.listeners import Listeners, attach

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
    "PRAGMA busy_timeout=15000",
    "PRAGMA synchronous=NORMAL",
)


def _private_files(database: Path) -> None:
    """The database and its WAL and SHM files readable by the daemon's user only, whatever the
    umask: they hold names, emails, phones and notes."""
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            if stat.S_IMODE(path.stat().st_mode) != 0o600:
                path.chmod(0o600)
        except FileNotFoundError:
            continue


def _private_database(database: Path) -> None:
    """Create the folder 0700 (when it is new) and the file 0600 before SQLite opens it."""
    folder = database.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode passes through the umask
    os.close(os.open(database, os.O_CREAT | os.O_RDWR, 0o600))
    _private_files(database)


def _prepare_sqlite(engine: AsyncEngine, database: Path | None) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so "begin" below decides how to begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()
        if database is not None:
            # WAL mode opens the -wal and -shm files now; SQLite gives new ones the database
            # file's mode, this covers files left by an older version.
            _private_files(database)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine for `url`; for SQLite, the folder (0700) and the file (0600).

    Statement parameters are never logged (they are personal data), even with `echo`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = None
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database)
            _private_database(database)
        engine = create_async_engine(url, echo=echo, hide_parameters=True)
        _prepare_sqlite(engine, database)
        return engine
    return create_async_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=10
    )


_SETTINGS = "calgate.settings"
_STORE = "calgate.store"


def session_settings(session: AsyncSession) -> Settings:
    """The settings of the store `session` came from (the config file's, if it had none)."""
    settings = session.info.get(_SETTINGS)
    if settings is None:
        # A store opened without settings (a script, a bare test): the daemon's own config.
        from gateway.config import load_settings

        settings = load_settings()
        session.info[_SETTINGS] = settings
    assert isinstance(settings, Settings)
    return settings


def session_store(session: AsyncSession) -> Store:
    """The store `session` came from (every session is opened by `Store.transaction`)."""
    store = session.info.get(_STORE)
    assert isinstance(store, Store), "a session not opened by Store.transaction"
    return store


class Store:
    """The database: an engine and the one way to open a transaction on it.

    `settings`, when given, travels with every session (`session_settings`), so that work done
    inside a transaction (planning notifications after a change, say) reads the daemon's
    settings without a global. `listeners` travel the same way: the features' reactions to
    domain changes, registered by gateway/features.py when the app (or a test) builds the store.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings | None = None,
        listeners: Listeners | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.listeners = listeners if listeners is not None else Listeners()
        # What the features above keep per store, set when the app is built (the connector
        # registry, gateway/sync/providers.py); the store itself never reads it.
        self.connectors: Any = None
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def from_url(cls, url: str, *, echo: bool = False, settings: Settings | None = None) -> Store:
        """Open the store at `url`."""
        return cls(create_engine(url, echo=echo), settings)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error."""
        async with self._sessions() as session, session.begin():
            session.info[_SETTINGS] = self.settings
            attach(session, self.listeners)
            session.info[_STORE] = self
            yield session

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` when the store closes (for what a feature keeps open on the database
        outside the pool, such as a listening connection)."""
        self._closers.append(closer)

    async def close(self) -> None:
        """Close what was registered with `on_close`, then every pooled connection."""
        closers, self._closers = self._closers, []
        for closer in closers:
            await closer()
        await self.engine.dispose()
