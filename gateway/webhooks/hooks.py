"""What causes events: one function per place, each called once, inside that place's transaction.

Payloads carry ids and the fields the type promises, never names, titles, notes, addresses or
phone numbers: the receiver reads those from the API with its own key if it needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.store.models import Client
from gateway.store.notify_models import DELIVERED, FAILED, SENT, UNDELIVERED, OutboxMessage
from gateway.store.sync_models import Integration, PurgeReceipt
from gateway.store.webhook_models import WebhookEndpoint
from gateway.webhooks import events
from gateway.webhooks.events import emit, iso

if TYPE_CHECKING:
    from gateway.domain.appointments import AppointmentChange
    from gateway.notify.topics import SmsOptChange

_APPOINTMENT_TYPES = {
    "created": events.APPOINTMENT_CREATED,
    "rescheduled": events.APPOINTMENT_UPDATED,
    "edited": events.APPOINTMENT_UPDATED,
    "cancelled": events.APPOINTMENT_CANCELLED,
}


async def on_appointment_change(session: AsyncSession, change: AppointmentChange) -> None:
    """appointment.created | updated | cancelled: the new state and version, and where the change
    came from (`api`, or the provider of the calendar it was made in)."""
    apt = change.appointment
    data = {
        "id": apt.id,
        "user_id": apt.user_id,
        "client_id": apt.client_id,
        "status": apt.status,
        "version": apt.version,
        "start": iso(apt.start_at),
        "end": iso(apt.end_at),
        "timezone": apt.timezone,
        "change": change.kind,
        "source": change.source,
    }
    await emit(
        session,
        apt.account_id,
        _APPOINTMENT_TYPES[change.kind],
        data,
        order_key=apt.id,
        seq=apt.version,
    )


def _in_order_of(integration_id: str) -> dict[str, Any]:
    # One integration's events go out one at a time, in the order they were written: the same
    # `seq` for all, so deliveries follow their ids (ULIDs, in creation order).
    return {"order_key": integration_id, "seq": 0}


async def integration_status_changed(session: AsyncSession, integration: Integration) -> None:
    """integration.status_changed, when the status set on `integration` since it was loaded
    differs from the stored one (read from the ORM's history, so the caller passes nothing
    else). The reason is the integration's last error, in words."""
    history = inspect(integration).attrs.status.history
    previous = history.deleted[0] if history.deleted else None
    if previous is None or previous == integration.status:
        return
    data = {
        "integration_id": integration.id,
        "user_id": integration.user_id,
        "provider": integration.provider,
        "status": integration.status,
        "previous_status": previous,
        "reason": integration.last_error,
    }
    await emit(
        session,
        integration.account_id,
        events.INTEGRATION_STATUS_CHANGED,
        data,
        **_in_order_of(integration.id),
    )


async def integration_purged(session: AsyncSession, receipt: PurgeReceipt) -> None:
    """integration.purged, carrying the purge receipt (counts by kind; no personal data)."""
    data = {
        "integration_id": receipt.integration_id,
        "user_id": receipt.user_id,
        "provider": receipt.provider,
        "receipt": {
            "counts": dict(receipt.counts),
            "remote_removed": receipt.remote_removed,
            "purged_at": iso(receipt.purged_at) if receipt.purged_at else None,
        },
    }
    await emit(
        session,
        receipt.account_id,
        events.INTEGRATION_PURGED,
        data,
        **_in_order_of(receipt.integration_id),
    )


async def _anyone_listens(session: AsyncSession) -> bool:
    # The notification hooks run on every delivery round: skip the row loads when no endpoint
    # exists at all (one indexed probe).
    return await session.scalar(select(WebhookEndpoint.id).limit(1)) is not None


async def notification_outcomes(session: AsyncSession, outbox_ids: Sequence[str]) -> None:
    """notification.failed (channel, reason) and notification.delivered (email accepted by the
    mail server; SMS reported delivered by Twilio) for those of `outbox_ids` that reached such a
    state. Each at most once per notification, whoever reports it."""
    if not outbox_ids or not await _anyone_listens(session):
        return
    rows = await session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.id.in_(list(outbox_ids)),
            OutboxMessage.status.in_([SENT, DELIVERED, FAILED, UNDELIVERED]),
        )
    )
    for row in rows:
        failed = row.status in (FAILED, UNDELIVERED)
        if not failed and not (
            row.status == DELIVERED or (row.status == SENT and row.channel == "email")
        ):
            continue  # an SMS accepted by Twilio: delivered or not is reported later
        event_type = events.NOTIFICATION_FAILED if failed else events.NOTIFICATION_DELIVERED
        data: dict[str, Any] = {
            "notification_id": row.id,
            "appointment_id": row.appointment_id,
            "kind": row.kind,
            "channel": row.channel,
            "recipient_type": row.recipient_type,
            "recipient_id": row.recipient_id,
        }
        if failed:
            data["reason"] = row.last_error
        await emit(session, row.account_id, event_type, data, idem_key=f"{event_type}:{row.id}")


async def sms_opt_changed(session: AsyncSession, change: SmsOptChange) -> None:
    """client.sms_opted_out | opted_in for every client with the number (the opt-out belongs
    to the number, so each account that knows it hears of it)."""
    if not await _anyone_listens(session):
        return
    event_type = events.CLIENT_SMS_OPTED_OUT if change.opted_out else events.CLIENT_SMS_OPTED_IN
    clients = (
        await session.execute(
            select(Client.id, Client.account_id).where(Client.phone == change.phone)
        )
    ).all()
    for client_id, account_id in clients:
        await emit(session, account_id, event_type, {"client_id": client_id})
