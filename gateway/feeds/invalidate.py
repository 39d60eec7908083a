"""The hooks that bump feed versions inside the transaction of a change.

A bump costs one UPDATE and may be broader than strictly needed (a feed whose window does not
reach the appointment): that only costs one re-render, because the ETag is a hash of the body
and stays the same when the bytes do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.store.feed_models import Feed

if TYPE_CHECKING:
    from gateway.domain.appointments import AppointmentChange


async def bump(
    session: AsyncSession,
    account_id: str,
    *,
    user_ids: Iterable[str] = (),
    client_ids: Iterable[str] = (),
    everything: bool = False,
) -> None:
    """Bump the account feeds, and the feeds of the given users and clients (or all)."""
    query = update(Feed).where(Feed.account_id == account_id)
    if not everything:
        query = query.where(
            or_(
                Feed.scope == "account",
                and_(Feed.scope == "user", Feed.user_id.in_(list(user_ids))),
                and_(Feed.scope == "client", Feed.client_id.in_(list(client_ids))),
            )
        )
    await session.execute(
        query.values(version=Feed.version + 1).execution_options(synchronize_session=False)
    )


async def on_appointment_change(session: AsyncSession, change: AppointmentChange) -> None:
    """Every feed that showed or now shows the appointment gets a new version."""
    appointment = change.appointment
    users = {appointment.user_id, change.previous.get("user_id")}
    clients = {appointment.client_id, change.previous.get("client_id")}
    await bump(
        session,
        appointment.account_id,
        user_ids=[u for u in users if u],
        client_ids=[c for c in clients if c],
    )


async def on_person_change(session: AsyncSession, account_id: str) -> None:
    """A user or client was edited or deleted: names and zones show in several feeds."""
    await bump(session, account_id, everything=True)
