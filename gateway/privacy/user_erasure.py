"""The erasure of a practitioner as one receipt.

`DELETE /v1/users/{id}` writes one erasure receipt (`privacy_erasures`, subject ``user``):
``done`` at once when nothing is connected, else ``pending`` while the purge job disconnects
each of their integrations (gateway/privacy/purge.py). Each purge adds its counts (our events
removed from the calendar or left there, mappings, credentials, ...) to the receipt as it
finishes; the last one deletes the practitioner with their appointments, the notifications
about those, feeds scoped to them and the idempotency records naming them, counts those, and
marks the receipt done. Readable later at `GET /v1/users/{id}/erasure`; the purge receipts of
each integration stay readable too.
"""

from __future__ import annotations

from sqlalchemy import Subquery, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain import people
from gateway.errors import NotFound as MissingRow
from gateway.privacy import erasure
from gateway.store.feed_models import Feed
from gateway.store.models import Account, Appointment, User
from gateway.store.notify_models import OutboxMessage
from gateway.store.privacy_models import Erasure
from gateway.store.sync_models import PurgeReceipt
from gateway.store.types import new_id, utcnow

SUBJECT = "user"


async def open_receipt(
    session: AsyncSession, account: Account, user_id: str, integrations: int
) -> Erasure:
    """The practitioner's pending erasure receipt (the same one when asked again)."""
    existing = await _pending(session, user_id)
    if existing is not None:
        return existing
    receipt = Erasure(
        id=new_id("ers"),
        account_id=account.id,
        subject=SUBJECT,
        subject_id=user_id,
        state=erasure.PENDING,
        counts={"integrations": integrations},
        requested_at=utcnow(),
    )
    session.add(receipt)
    await session.flush()
    return receipt


async def _pending(session: AsyncSession, user_id: str) -> Erasure | None:
    return await session.scalar(
        select(Erasure).where(
            Erasure.subject == SUBJECT,
            Erasure.subject_id == user_id,
            Erasure.state == erasure.PENDING,
        )
    )


def _add(receipt: Erasure, counts: dict[str, int]) -> None:
    out = dict(receipt.counts)
    for key, n in counts.items():
        out[key] = out.get(key, 0) + n
    receipt.counts = out


async def credit_purge(session: AsyncSession, purge: PurgeReceipt) -> None:
    """Add a finished purge's counts to the pending erasure of its practitioner."""
    receipt = await _pending(session, purge.user_id)
    if receipt is not None:
        _add(receipt, {k: int(v) for k, v in purge.counts.items()})


async def delete_user(session: AsyncSession, account: Account, user_id: str) -> None:
    """Delete the practitioner and what hangs on them, counting it on their receipt (then done)."""
    appointments = select(Appointment.id).where(Appointment.user_id == user_id)
    counts = {
        "appointments": await _count(session, appointments.subquery()),
        "notifications": await _count(
            session,
            select(OutboxMessage.id)
            .where(
                or_(
                    OutboxMessage.appointment_id.in_(appointments),
                    (OutboxMessage.recipient_type == SUBJECT)
                    & (OutboxMessage.recipient_id == user_id),
                )
            )
            .subquery(),
        ),
        "feeds": await _count(session, select(Feed.id).where(Feed.user_id == user_id).subquery()),
        "idempotency_records": await erasure.forget_replies(session, account.id, user_id),
    }
    await people.delete_person(session, account, User, user_id)
    receipt = await open_receipt(session, account, user_id, 0)
    _add(receipt, counts)
    receipt.state = erasure.DONE
    receipt.done_at = utcnow()
    await session.flush()


async def _count(session: AsyncSession, rows: Subquery) -> int:
    return int(await session.scalar(select(func.count()).select_from(rows)) or 0)


async def receipt_of(session: AsyncSession, account: Account, user_id: str) -> Erasure:
    """The latest erasure receipt of a practitioner (404 when never erased, or for others)."""
    receipt = await session.scalar(
        select(Erasure)
        .where(
            Erasure.account_id == account.id,
            Erasure.subject == SUBJECT,
            Erasure.subject_id == user_id,
        )
        .order_by(Erasure.requested_at.desc())
        .limit(1)
    )
    if receipt is None:
        raise MissingRow("no erasure for this user")
    return receipt


async def integration_ids(session: AsyncSession, receipt: Erasure) -> list[str]:
    """The integrations whose purge the erasure waits for (or waited for)."""
    return list(
        await session.scalars(
            select(PurgeReceipt.integration_id)
            .where(
                PurgeReceipt.user_id == receipt.subject_id,
                PurgeReceipt.account_id == receipt.account_id,
                PurgeReceipt.delete_user.is_(True),
            )
            .order_by(PurgeReceipt.integration_id)
        )
    )
