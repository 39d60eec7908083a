"""What the sync engine and the purge publish about integrations (gateway/store/listeners.py).

Other features react through listeners registered in gateway/features.py (the webhooks write
`integration.status_changed` and `integration.purged` events), so the engine and
gateway/privacy know none of them. Listeners run in the publisher's transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.store.listeners import publish
from gateway.store.sync_models import Integration, PurgeReceipt

# Event: the Integration, its new status set and not yet flushed (listeners read the previous
# one from the ORM's history, so publish before any flush; an unchanged status is no change).
INTEGRATION_STATUS = "integration.status"
# Event: the PurgeReceipt, done.
INTEGRATION_PURGED = "integration.purged"


async def status_set(session: AsyncSession, integration: Integration) -> None:
    """Publish that `integration`'s status may have changed (call before flushing it)."""
    await publish(session, INTEGRATION_STATUS, integration)


async def purged(session: AsyncSession, receipt: PurgeReceipt) -> None:
    """Publish that an integration is purged, with its finished receipt."""
    await publish(session, INTEGRATION_PURGED, receipt)
