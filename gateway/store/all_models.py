"""Imports every model module, so Alembic (and anything needing the full schema) sees all tables.

Each feature keeps its tables in its own module under gateway/store/; add one import line here.
"""

from gateway.store import (
    account_models,  # noqa: F401
    feed_models,  # noqa: F401
    lifecycle_models,  # noqa: F401
    models,  # noqa: F401
    notify_models,  # noqa: F401
    sync_models,  # noqa: F401
    webhook_models,  # noqa: F401
)
