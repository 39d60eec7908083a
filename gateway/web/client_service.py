"""What a client's page reads and changes: their upcoming appointments and their own settings.

Changes go through the same rules as the API (`gateway.domain.people.update_client`) and each
one is recorded in `contact_changes` (which field, when, from where), which is how a
correction made by the client shows up for the practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain import people
from gateway.store.models import Account, Appointment, Client, User
from gateway.store.types import utcnow
from gateway.store.web_models import ContactChange
from gateway.web.client_links import LinkHolder, LinkProblem, contact_fingerprint

UPCOMING_DAYS = 366
UPCOMING_LIMIT = 50


@dataclass(frozen=True)
class Upcoming:
    """One of the client's coming appointments, as the page shows it."""

    appointment: Appointment
    practitioner: str


async def holder_client(
    session: AsyncSession, holder: LinkHolder
) -> tuple[Account, Client] | LinkProblem:
    """The client a link belongs to; REPLACED when its contact details changed since, WITHDRAWN
    when the client (or the account) is deleted: the signature proved the link was ours."""
    client = await session.get(Client, holder.client_id)
    if client is None:
        return LinkProblem.WITHDRAWN
    if contact_fingerprint(client.email, client.phone) != holder.contact:
        return LinkProblem.REPLACED
    account = await session.get(Account, client.account_id)
    if account is None:
        return LinkProblem.WITHDRAWN
    return account, client


async def upcoming(session: AsyncSession, client: Client, now: datetime) -> list[Upcoming]:
    """The client's confirmed appointments from now on, soonest first."""
    rows = await session.execute(
        select(Appointment, User.name)
        .join(User, User.id == Appointment.user_id)
        .where(
            Appointment.client_id == client.id,
            Appointment.status == "confirmed",
            Appointment.end_at > now,
            Appointment.start_at < now + timedelta(days=UPCOMING_DAYS),
        )
        .order_by(Appointment.start_at, Appointment.id)
        .limit(UPCOMING_LIMIT)
    )
    return [Upcoming(appointment, name) for appointment, name in rows]


async def own_appointment(
    session: AsyncSession, client: Client, appointment_id: str
) -> tuple[Appointment, str] | None:
    """One of the client's appointments with the practitioner's name (None: not theirs)."""
    row = (
        await session.execute(
            select(Appointment, User.name)
            .join(User, User.id == Appointment.user_id)
            .where(Appointment.id == appointment_id, Appointment.client_id == client.id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def change(
    session: AsyncSession, account: Account, client: Client, changes: dict[str, Any], source: str
) -> list[str]:
    """Apply the client's own changes (API rules, 422 naming a bad field); the fields changed."""
    before = {key: getattr(client, key) for key in changes}
    await people.update_client(session, account, client.id, changes)
    changed = [key for key in changes if getattr(client, key) != before[key]]
    for field in changed:
        session.add(
            ContactChange(
                account_id=account.id,
                client_id=client.id,
                field=field,
                source=source,
                changed_at=utcnow(),
            )
        )
    await session.flush()
    return changed
