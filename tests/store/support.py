"""Helpers for store and worker tests: job rows, and a second engine on the same database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.store.db import Store
from gateway.store.models import Job
from gateway.store.types import new_id


async def add_jobs(
    store: Store, count: int, due_at: datetime, *, kind: str = "test.job", **values
) -> list[str]:
    """Insert `count` jobs due at `due_at`; returns their ids in insertion order."""
    ids = [new_id("job") for _ in range(count)]
    rows = [
        {"id": i, "kind": kind, "key": i, "payload": {}, "due_at": due_at, "attempts": 0, **values}
        for i in ids
    ]
    async with store.transaction() as session:
        await session.execute(insert(Job), rows)
    return ids


async def get_job(store: Store, job_id: str) -> Job | None:
    """The job as stored now (a fresh session, so nothing comes from an identity map)."""
    async with store.transaction() as session:
        job: Job | None = await session.scalar(select(Job).where(Job.id == job_id))
        return job


async def twin_factory(store: Store, application_name: str = "calgate") -> Callable[[], Store]:
    """A function opening another engine on the same database (another process, in effect).

    The engine is created where the function is called, so it can be called inside another
    thread's event loop. On PostgreSQL its connections carry `application_name`.
    """
    url = store.engine.url.render_as_string(hide_password=False)
    if store.dialect == "sqlite":
        return lambda: Store.from_url(url)
    async with store.engine.connect() as conn:
        schema = await conn.scalar(text("SELECT current_schema()"))
    args = {"server_settings": {"search_path": schema, "application_name": application_name}}
    return lambda: Store(create_async_engine(url, connect_args=args))
