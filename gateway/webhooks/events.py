"""Event types and the outbox: `emit` writes an event and one delivery per enabled endpoint that
wants it, in the caller's transaction, so an event exists exactly when its change committed.

An event is stored when any endpoint of the account (enabled or not) subscribes to its type, so
that an endpoint disabled for a while can be replayed; deliveries are made for enabled endpoints
only. An account without endpoints stores nothing.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.store.db import Store, session_store
from gateway.store.types import new_id, utcnow
from gateway.store.webhook_models import PENDING, WebhookDelivery, WebhookEndpoint, WebhookEvent

APPOINTMENT_CREATED = "appointment.created"
APPOINTMENT_UPDATED = "appointment.updated"
APPOINTMENT_CANCELLED = "appointment.cancelled"
INTEGRATION_STATUS_CHANGED = "integration.status_changed"
INTEGRATION_PURGED = "integration.purged"
NOTIFICATION_FAILED = "notification.failed"
NOTIFICATION_DELIVERED = "notification.delivered"
CLIENT_SMS_OPTED_OUT = "client.sms_opted_out"
CLIENT_SMS_OPTED_IN = "client.sms_opted_in"

EVENT_TYPES = (
    APPOINTMENT_CREATED,
    APPOINTMENT_UPDATED,
    APPOINTMENT_CANCELLED,
    INTEGRATION_STATUS_CHANGED,
    INTEGRATION_PURGED,
    NOTIFICATION_FAILED,
    NOTIFICATION_DELIVERED,
    CLIENT_SMS_OPTED_OUT,
    CLIENT_SMS_OPTED_IN,
)
# Sent only to endpoints that name them (one per message: many, and rarely needed).
OPT_IN = frozenset({NOTIFICATION_DELIVERED})
DEFAULT_TYPES = tuple(t for t in EVENT_TYPES if t not in OPT_IN)


# store -> what to call when a transaction on it committed deliveries due now (the dispatcher of
# this process, gateway/webhooks/dispatcher.py); a process without one waits for a tick elsewhere.
_WAKERS: weakref.WeakKeyDictionary[Store, Callable[[], None]] = weakref.WeakKeyDictionary()
_WAKE_PENDING = "calgate.webhooks.wake"


def on_due(store: Store, wake: Callable[[], None]) -> None:
    """Call `wake` after each commit on `store` that made deliveries due now."""
    _WAKERS[store] = wake


def due_now(session: AsyncSession) -> None:
    """Deliveries made due now in this transaction: wake this process's dispatcher when it
    commits, so they go within milliseconds instead of at the next tick (nothing on rollback)."""
    wake = _WAKERS.get(session_store(session))
    if wake is None or session.info.get(_WAKE_PENDING):
        return
    session.info[_WAKE_PENDING] = True

    def committed(_: Session) -> None:
        wake()

    event.listen(session.sync_session, "after_commit", committed, once=True)


def iso(moment: datetime) -> str:
    """An instant as the payloads write it: RFC 3339 in UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


async def wanted_by(session: AsyncSession, account_id: str, event_type: str) -> list[str] | None:
    """The enabled endpoints of the account that want `event_type`; None when no endpoint at all
    (enabled or not) subscribes to it, so the event need not be stored."""
    rows = (
        await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.enabled, WebhookEndpoint.event_types).where(
                WebhookEndpoint.account_id == account_id
            )
        )
    ).all()
    subscribed = [r for r in rows if event_type in r.event_types]
    if not subscribed:
        return None
    return [r.id for r in subscribed if r.enabled]


async def emit(
    session: AsyncSession,
    account_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    order_key: str | None = None,
    seq: int | None = None,
    idem_key: str | None = None,
) -> str | None:
    """Record an event and its deliveries in the caller's transaction; returns the event id, or
    None when nobody subscribes (or `idem_key` was already used)."""
    endpoint_ids = await wanted_by(session, account_id, event_type)
    if endpoint_ids is None:
        return None
    if idem_key is not None and await session.scalar(
        select(WebhookEvent.id).where(WebhookEvent.idem_key == idem_key)
    ):
        return None
    now = utcnow()
    event_id = new_id("evt")
    await session.execute(
        insert(WebhookEvent).values(
            id=event_id,
            account_id=account_id,
            type=event_type,
            data=data,
            order_key=order_key,
            seq=seq,
            idem_key=idem_key,
            created_at=now,
        )
    )
    if endpoint_ids:
        await session.execute(
            insert(WebhookDelivery),
            [
                delivery_row(endpoint_id, event_id, account_id, order_key, seq, now)
                for endpoint_id in endpoint_ids
            ],
        )
        due_now(session)
    return event_id


def delivery_row(
    endpoint_id: str,
    event_id: str,
    account_id: str,
    order_key: str | None,
    seq: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The values of a new pending delivery, due now."""
    return {
        "id": new_id("whd"),
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "account_id": account_id,
        "order_key": order_key,
        "seq": seq,
        "status": PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "due_at": now,
    }


def body_of(event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The request body, as the Standard Webhooks specification shapes it: type, timestamp and
    data. The same bytes on every attempt."""
    payload = {"type": event_type, "timestamp": iso(created_at), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
