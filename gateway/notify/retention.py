"""Retention of notification history: the delivery log and finished outbox rows.

Both hold personal data or point at it (recipient ids, provider ids, error texts such as a
refused address's SMTP reply), so they are deleted `notify_log_retention_days` after their last
activity. Called once per retention sweep from `gateway.privacy.retention`.

- A delivery-log entry's last activity is when it finished (or started, if it never did).
- An outbox row's last activity is the latest of its own update, its send, and its newest log
  entry (a late status callback counts). Only final rows go (sent, delivered, undelivered,
  failed, cancelled, skipped, suppressed): a pending row is never deleted, nor its log, and
  neither is a row of an appointment that has not started yet, because the planner reads that
  history to decide who must hear of a later cancellation or reschedule.
- Opt-outs (`notify_sms_optouts`) are kept: a STOP must outlive erasure of the person who sent
  it. Deleting it would let a later booking with the same number text someone who told us (and
  the carrier) to stop, which the law on unsolicited messages forbids. Only a keyed hash of the
  number is kept (gateway/notify/optouts.py): enough to honour it, not the number itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from gateway.config import Settings
from gateway.store.models import Appointment
from gateway.store.notify_models import PENDING, DeliveryAttempt, OutboxMessage


async def sweep(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete delivery-log entries and final outbox rows past retention; return counts."""
    cutoff = now - timedelta(days=settings.notify_log_retention_days)
    log_activity = func.coalesce(DeliveryAttempt.finished_at, DeliveryAttempt.started_at)
    # Aliases: the subquery must not correlate with the DELETE statements' own tables.
    row, entry = aliased(OutboxMessage), aliased(DeliveryAttempt)
    entry_activity = func.coalesce(entry.finished_at, entry.started_at)
    old_rows = select(row.id).where(
        row.status != PENDING,
        row.updated_at < cutoff,
        or_(row.sent_at.is_(None), row.sent_at < cutoff),
        ~exists().where(entry.outbox_id == row.id, entry_activity >= cutoff),
        or_(
            exists().where(Appointment.id == row.appointment_id, Appointment.start_at <= now),
            ~exists().where(Appointment.id == row.appointment_id),
        ),
    )
    # The log first: the entries of the rows going now, and old entries of other final rows.
    pending = select(OutboxMessage.id).where(OutboxMessage.status == PENDING)
    log_deleted = await session.execute(
        delete(DeliveryAttempt)
        .where(
            or_(
                DeliveryAttempt.outbox_id.in_(old_rows),
                and_(log_activity < cutoff, DeliveryAttempt.outbox_id.not_in(pending)),
            )
        )
        .execution_options(synchronize_session=False)
    )
    rows_deleted = await session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.id.in_(old_rows))
        .execution_options(synchronize_session=False)
    )
    return {
        "notify_delivery_log": int(log_deleted.rowcount),  # type: ignore[attr-defined]
        "notify_outbox": int(rows_deleted.rowcount),  # type: ignore[attr-defined]
    }
