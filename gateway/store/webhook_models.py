"""Tables of outbound webhooks: the booking product's endpoints, the events (an outbox written in
the same transaction as the change that caused them), one delivery per event and endpoint
(claimed with leases), and every attempt at a delivery.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base, LeaseMixin
from gateway.store.types import new_id, utcnow

# Delivery statuses: pending (waiting, in flight or being retried), delivered (a 2xx), failed
# (given up: a refusal that retrying cannot fix, or retries ran out).
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


class WebhookEndpoint(Base):
    """Where an account wants its events: a URL, the event types, and whether it is enabled."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("whe"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # In words, why calgate disabled it (410 Gone, failing for days); None when enabled by hand.
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # The signing secret (whsec_...), encrypted (gateway/secrets.py); shown once at creation.
    secret: Mapped[str] = mapped_column(Text)
    # After a rotation the old secret signs too (a second signature) until `previous_until`, so
    # receivers can switch without missing a delivery.
    previous_secret: Mapped[str | None] = mapped_column(Text, default=None)
    previous_until: Mapped[datetime | None] = mapped_column(default=None)
    # Since when every attempt has failed; None after any success.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEvent(Base):
    """Something that happened, as sent: its type and the body's `data` (ids and the promised
    fields only). Its id is the `webhook-id` header of every delivery of it."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_account_created", "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("evt"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(48))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Deliveries with the same key go out one at a time in `seq` order (an appointment's id and
    # version); None: no order to keep.
    order_key: Mapped[str | None] = mapped_column(String(40), default=None)
    seq: Mapped[int | None] = mapped_column(Integer, default=None)
    # At most one event per key (a notification's final outcome): a second report adds none.
    idem_key: Mapped[str | None] = mapped_column(String(120), default=None, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookDelivery(LeaseMixin, Base):
    """One event to one endpoint: claimed with a lease, retried with backoff until delivered or
    given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # Which endpoints have due work, and the claim of one endpoint's due deliveries.
        Index("ix_webhook_deliveries_claim", "endpoint_id", "status", "due_at"),
        # How many deliveries are in flight to an endpoint (live leases), by any process.
        Index("ix_webhook_deliveries_busy", "endpoint_id", "lease_expires_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "order_key", "seq"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("whd"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    order_key: Mapped[str | None] = mapped_column(String(40), default=None)
    seq: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Retries run for webhooks.retry_hours from here: the creation, or a retry asked for by hand.
    retry_since: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    """One try at a delivery: when, how long, the answer's status and its first bytes."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "started_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("wha"))
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[float] = mapped_column(default=0.0)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    # In words: "timeout", "connection refused", "HTTP 503"; None on success.
    error: Mapped[str | None] = mapped_column(String(200), default=None)
    # The first bytes of the answer (webhooks.response_bytes), as text.
    response: Mapped[str | None] = mapped_column(Text, default=None)
