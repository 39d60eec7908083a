"""What Twilio tells us: delivery status of a message, and replies (STOP / START) from people.

Both arrive as signed form posts (gateway/api/twilio_webhooks.py checks the signature first).
A status only moves a row forward (sent → delivered, undelivered or failed), never back, and
each report is kept in the delivery log. STOP and its synonyms record an opt-out for the
number (Twilio blocks the number itself too, answering 21610 to any later send); START and its
synonyms remove it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.notify import optouts, topics
from gateway.notify.channels.sms import status_failure
from gateway.store.notify_models import (
    DELIVERED,
    FAILED,
    PENDING,
    SENT,
    UNDELIVERED,
    DeliveryAttempt,
    OutboxMessage,
)
from gateway.store.types import utcnow

# Twilio's own opt-out and opt-in keywords (matched on the whole trimmed message).
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "YES", "UNSTOP", "OPTIN"}
_RANK = {PENDING: 0, SENT: 1, DELIVERED: 2, UNDELIVERED: 2, FAILED: 2}
_STATUSES = {"sent": SENT, "delivered": DELIVERED, "undelivered": UNDELIVERED, "failed": FAILED}


async def record_status(
    session: AsyncSession, outbox_id: str | None, sid: str, status: str, error_code: str | None
) -> bool:
    """Apply a status callback; False when it names no message of ours."""
    query = select(OutboxMessage).where(OutboxMessage.provider_id == sid)
    if outbox_id:
        query = select(OutboxMessage).where(OutboxMessage.id == outbox_id)
    row = await session.scalar(query)
    if row is None or (row.provider_id not in (None, sid)):
        return False
    new = _STATUSES.get(status)
    now = utcnow()
    session.add(
        DeliveryAttempt(
            outbox_id=row.id,
            attempt=row.attempts,
            started_at=now,
            finished_at=now,
            outcome=f"status:{status}"[:16],
            error=f"twilio {error_code}" if error_code else None,
            provider_id=sid,
            detail=status_failure(error_code) if error_code else None,
        )
    )
    if new is not None and row.status in _RANK and _RANK[new] > _RANK[row.status]:
        row.status = new
        row.provider_id = sid
        if error_code:
            row.last_error = f"twilio {error_code}"
        row.updated_at = now
        await topics.outcomes_stored(session, [row.id])
    return True


def keyword(body: str) -> str:
    """The reply's keyword: its trimmed text in capitals."""
    return " ".join(body.split()).upper()


async def record_reply(session: AsyncSession, phone: str, body: str) -> str | None:
    """Apply STOP / START from `phone`; returns "stop", "start" or None."""
    word = keyword(body)
    if word in STOP_WORDS:
        if await optouts.opt_out(session, phone):
            await topics.sms_opt_changed(session, phone, opted_out=True)
        return "stop"
    if word in START_WORDS:
        if await optouts.opt_in(session, phone):
            await topics.sms_opt_changed(session, phone, opted_out=False)
        return "start"
    return None
