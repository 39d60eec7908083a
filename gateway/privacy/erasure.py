"""Erasure of a client: everything about them goes, here at once and in external calendars by a
durable job.

Accepting it is one transaction: the copies of the client's appointments in connected calendars
are recorded (`ErasureCopy`: href and etag, no personal data), an erasure receipt is written and a
job queued; then the client is deleted with everything that hangs on them by cascade (their
appointments, the outbox rows and delivery logs of those, feeds scoped to them and their access
records, their notification settings), along with the idempotency records whose stored response
names them. A sync cannot put a copy back: the appointment is gone, and the job waits for a sync
that was already running to finish. The job deletes the copies page by page
(gateway/privacy/remote.py) and marks the receipt ``done``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Connector, ConnectorError
from gateway import secrets
from gateway.config import Settings
from gateway.domain import people
from gateway.domain.scoping import get_owned
from gateway.errors import NotFound as MissingRow
from gateway.privacy import remote
from gateway.privacy.receipts import checkpoint
from gateway.store.db import Store, session_store
from gateway.store.models import Account, Appointment, Client, IdempotencyRecord, Job
from gateway.store.privacy_models import Erasure, ErasureCopy
from gateway.store.sync_models import Integration, SyncCalendar, SyncMapping
from gateway.store.types import new_id, utcnow
from gateway.sync import providers
from gateway.sync.run import PURGING

log = logging.getLogger("calgate.privacy")

JOB_KIND = "privacy.erase"
PENDING = "pending"
DONE = "done"
_LEASE_WAIT = timedelta(seconds=1)


async def accept_client_erasure(session: AsyncSession, account: Account, client_id: str) -> Erasure:
    """Erase a client (see the module docstring), in the caller's transaction."""
    client = await get_owned(session, Client, account, client_id)
    erasure = Erasure(
        id=new_id("ers"),
        account_id=account.id,
        subject="client",
        subject_id=client.id,
        state=PENDING,
        counts={},
        requested_at=utcnow(),
    )
    session.add(erasure)
    await session.flush()
    appointments = select(Appointment.id).where(Appointment.client_id == client.id)
    copies = await session.execute(
        insert(ErasureCopy).from_select(
            ["erasure_id", "integration_id", "href", "etag"],
            select(
                literal(erasure.id), SyncMapping.integration_id, SyncMapping.href, SyncMapping.etag
            ).where(SyncMapping.appointment_id.in_(appointments)),
        )
    )
    counts = {
        "appointments": int(
            await session.scalar(select(func.count()).select_from(appointments.subquery())) or 0
        ),
        "remote_copies": int(copies.rowcount),  # type: ignore[attr-defined]
    }
    counts["idempotency_records"] = await forget_replies(session, account.id, client.id)
    await people.delete_person(session, account, Client, client.id)
    erasure.counts = counts
    session.add(Job.due_now(JOB_KIND, f"{JOB_KIND}:{erasure.id}", {"erasure_id": erasure.id}))
    await session.flush()
    log.info("erasure accepted", extra={"erasure_id": erasure.id})
    return erasure


async def forget_replies(session: AsyncSession, account_id: str, person_id: str) -> int:
    """Delete the idempotency records whose stored answer names the person (by id: every answer
    about them, or their appointments, carries it); returns how many."""
    records = await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.account_id == account_id,
            cast(IdempotencyRecord.response_body, String).contains(person_id),
        )
    )
    return int(records.rowcount)  # type: ignore[attr-defined]


async def erasure_of(session: AsyncSession, account: Account, client_id: str) -> Erasure:
    """The latest erasure receipt of a client (404 when never erased, or for others)."""
    erasure = await session.scalar(
        select(Erasure)
        .where(Erasure.account_id == account.id, Erasure.subject_id == client_id)
        .order_by(Erasure.requested_at.desc())
        .limit(1)
    )
    if erasure is None:
        raise MissingRow("no erasure for this client")
    return erasure


async def run(store: Store, settings: Settings, payload: dict[str, Any]) -> datetime | None:
    """The erasure job: delete the recorded copies, integration by integration; None when done,
    or when to look again (a sync of one of those integrations is still running)."""
    erasure_id = str(payload["erasure_id"])
    async with store.transaction() as session:
        erasure = await session.get(Erasure, erasure_id)
        if erasure is None or erasure.state == DONE:
            return None
        integrations = list(
            await session.scalars(
                select(Integration).where(
                    Integration.status != PURGING,  # the purge deletes them first thing
                    Integration.id.in_(
                        select(ErasureCopy.integration_id).where(
                            ErasureCopy.erasure_id == erasure_id
                        )
                    ),
                )
            )
        )
        now = utcnow()
        if any(i.lease_expires_at is not None and i.lease_expires_at > now for i in integrations):
            return now + _LEASE_WAIT  # a sync that may have pushed them again is still running
        work = [(i.id, *await _connector(session, settings, i)) for i in integrations]
    for integration_id, calendar, connector in work:
        try:
            await delete_erased_copies(
                store, settings, connector, calendar, integration_id, erasure_id
            )
        finally:
            if connector is not None:
                await connector.close()
    async with store.transaction() as session:
        erasure = await session.get(Erasure, erasure_id)
        if erasure is not None:
            erasure.state = DONE
            erasure.done_at = utcnow()
    await checkpoint(store)
    return None


async def _connector(
    session: AsyncSession, settings: Settings, integration: Integration
) -> tuple[str | None, Connector | None]:
    calendar = await session.scalar(
        select(SyncCalendar.remote_id).where(
            SyncCalendar.integration_id == integration.id, SyncCalendar.write
        )
    )
    try:
        return calendar, providers.connector_for(session_store(session), settings, integration)
    except (secrets.SecretUnreadable, ConnectorError):
        return calendar, None


async def delete_erased_copies(
    store: Store,
    settings: Settings,
    connector: Connector | None,
    calendar: str | None,
    integration_id: str,
    erasure_id: str | None = None,
) -> None:
    """Delete the copies of erased appointments in one integration's calendar (of one erasure,
    or all of them: a purge of the integration does this first), crediting each erasure's
    receipt; without a connector or a calendar they are counted as left there."""
    async with store.transaction() as session:
        ids = (
            [erasure_id]
            if erasure_id is not None
            else list(
                await session.scalars(
                    select(ErasureCopy.erasure_id)
                    .where(ErasureCopy.integration_id == integration_id)
                    .distinct()
                )
            )
        )
    for one in ids:
        scope = remote.erased_in(integration_id, one)
        credit = _credit_erasure(one)
        if connector is None or calendar is None:
            await remote.give_up_remote(store, scope, credit)
        else:
            await remote.delete_remote_copies(store, settings, connector, calendar, scope, credit)


def _credit_erasure(erasure_id: str) -> remote.Credit:
    async def credit(session: AsyncSession, counts: dict[str, int]) -> None:
        erasure = await session.get(Erasure, erasure_id)
        if erasure is not None:
            out = dict(erasure.counts)
            for key, n in counts.items():
                out[key] = out.get(key, 0) + n
            erasure.counts = out

    return credit
