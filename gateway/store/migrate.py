"""Apply and check Alembic migrations on the store's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from gateway.config import Settings
from gateway.store.db import Store

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant the other users of advisory locks on the database do not use ("calgate" in hex).
_MIGRATION_LOCK = 0x63616C67617465


def alembic_config(
    connection: Connection | None = None, settings: Settings | None = None
) -> Config:
    """An Alembic config pointing at calgate's migrations (and at `connection`, if given; a
    migration that needs the secrets key reads `settings`)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    if settings is not None:
        cfg.attributes["settings"] = settings
    return cfg


def head_revisions() -> set[str]:
    """The revisions the code expects the database to be at."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade(store: Store) -> None:
    """Bring the schema to the newest revisions (no-op when already there).

    "heads": each feature may add its own branch of migrations off the same parent.
    """

    def _run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Several processes starting at once: one migrates, the others wait, then find
            # nothing left to do (the lock ends with this transaction).
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        command.upgrade(alembic_config(connection, store.settings), "heads")

    async with store.engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revisions(store: Store) -> set[str]:
    """The revisions the database is at (empty when never migrated)."""

    def _read(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with store.engine.connect() as conn:
        return await conn.run_sync(_read)


async def is_current(store: Store) -> bool:
    """True when the database schema matches the code."""
    return await current_revisions(store) == head_revisions()
