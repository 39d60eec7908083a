"""The sync engine's reaction to an appointment change: a dirty mark, in the same transaction.

Kept free of imports of the domain services, so gateway/domain/appointments.py can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.store.sync_models import Integration
from gateway.store.types import utcnow

if TYPE_CHECKING:
    from gateway.domain.appointments import AppointmentChange

ACTIVE = "active"


async def on_appointment_change(session: AsyncSession, change: AppointmentChange) -> None:
    """Mark the practitioner's integrations due now, so the tick pushes the change promptly."""
    users = {change.appointment.user_id}
    previous_user = change.previous.get("user_id")
    if isinstance(previous_user, str):
        users.add(previous_user)
    await session.execute(
        update(Integration)
        .where(Integration.user_id.in_(users), Integration.status == ACTIVE)
        .values(dirty=True, due_at=utcnow())
        .execution_options(synchronize_session=False)
    )
