"""Busy time: a practitioner's appointments and the busy blocks of their connected calendars."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.scoping import get_owned
from gateway.errors import ValidationFailed
from gateway.store.models import Account, Appointment, User
from gateway.store.sync_models import BusyBlock, Integration
from gateway.sync import intervals


async def busy_time(
    session: AsyncSession, account: Account, user_id: str, start: datetime, end: datetime
) -> list[intervals.Interval]:
    """The user's busy time in [start, end): confirmed appointments and busy blocks of all
    their integrations, merged into sorted, non-overlapping intervals."""
    await get_owned(session, User, account, user_id)
    if end <= start:
        raise ValidationFailed.one("to", "must be after from")
    appointments = await session.execute(
        select(Appointment.start_at, Appointment.end_at).where(
            Appointment.account_id == account.id,
            Appointment.user_id == user_id,
            Appointment.status != "cancelled",
            Appointment.end_at > start,
            Appointment.start_at < end,
        )
    )
    blocks = await session.execute(
        select(BusyBlock.start_at, BusyBlock.end_at)
        .join(Integration, Integration.id == BusyBlock.integration_id)
        .where(
            Integration.account_id == account.id,
            BusyBlock.user_id == user_id,
            BusyBlock.end_at > start,
            BusyBlock.start_at < end,
        )
    )
    found = [
        intervals.Interval(max(s, start), min(e, end))
        for s, e in [*appointments.all(), *blocks.all()]
    ]
    return intervals.merge(i for i in found if i.end > i.start)
