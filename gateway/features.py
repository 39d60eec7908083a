"""The features' reactions to domain changes, registered on a Store when the app is built.

gateway/domain publishes appointment and person changes (gateway/store/listeners.py) and imports
no feature; this is the one place that says who listens, in which order. `create_app`, the CLI
and the tests' stores call `install`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.appointments import APPOINTMENT_CHANGED
from gateway.domain.people import PERSON_CHANGED, PersonChange
from gateway.feeds import invalidate as feeds
from gateway.notify import planner
from gateway.store.db import Store
from gateway.store.listeners import Listeners
from gateway.sync import hooks as sync_hooks
from gateway.webhooks import hooks as webhook_hooks


async def _feeds_on_person(session: AsyncSession, change: PersonChange) -> None:
    await feeds.on_person_change(session, change.account_id)


def listeners() -> Listeners:
    """Every feature's listeners: notifications are planned, feeds bumped, syncs marked due,
    webhook events written."""
    registry = Listeners()
    registry.add(APPOINTMENT_CHANGED, planner.on_appointment_change)
    registry.add(APPOINTMENT_CHANGED, feeds.on_appointment_change)
    registry.add(APPOINTMENT_CHANGED, sync_hooks.on_appointment_change)
    registry.add(APPOINTMENT_CHANGED, webhook_hooks.on_appointment_change)
    registry.add(PERSON_CHANGED, _feeds_on_person)
    return registry


def install(store: Store) -> Store:
    """Give `store` the features' listeners (replacing any it had); returns it."""
    store.listeners = listeners()
    return store
