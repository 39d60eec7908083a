"""Alembic environment: runs on a connection handed over by gateway.store.migrate."""

from __future__ import annotations

from alembic import context

import gateway.store.all_models  # noqa: F401 - registers every table on Base.metadata
from gateway.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - calgate always hands a connection over
    raise RuntimeError("run migrations with `calgate migrate`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
