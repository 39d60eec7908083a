"""The engine and sessions.

SQLite (embedded default): WAL, foreign keys, ``secure_delete`` (deleted personal data is
overwritten, not left in free pages), and every transaction opened with ``BEGIN IMMEDIATE`` so
that writers queue on the busy timeout instead of failing when a read turns into a write. That
also makes SQLite a single-writer store, which is what the lease claims rely on there.
PostgreSQL: claims use ``FOR UPDATE SKIP LOCKED`` and any number of processes share the work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
    "PRAGMA busy_timeout=15000",
    "PRAGMA synchronous=NORMAL",
)


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so "begin" below decides how to begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine for `url`, creating the SQLite file's folder if needed.

    Statement parameters are never logged (they are personal data), even with `echo`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, hide_parameters=True)
        _prepare_sqlite(engine)
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
    settings without a global.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings
        # What the features above keep per store, set when the app is built (the connector
        # registry, gateway/sync/providers.py); the store itself never reads it.
        self.connectors: Any = None
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

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
            session.info[_STORE] = self
            yield session

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
