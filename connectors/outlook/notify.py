"""Graph's change notifications: the subscription body, and webhook requests read for the engine.

- A subscription per synced calendar on ``me/calendars/{id}/events`` (created, updated,
  deleted), at most 4,230 minutes long, with the engine's random token as ``clientState`` (Graph
  echoes it in every notification; the engine keeps only its hash). Lifecycle notifications go to
  the same address.
- Creating one, Graph first POSTs ``?validationToken=...`` to the address and wants it back as
  ``200 text/plain`` within 10 seconds: answered as a `Reply`, before anything else is read.
- Renewal PATCHes the expiration (same id, same clientState, no new handshake).
- Notifications come in batches (``{"value": [...]}``), acknowledged with 202. A lifecycle
  notification (``lifecycleEvent``) says: ``reauthorizationRequired`` → renew,
  ``subscriptionRemoved`` → recreate (and pull), ``missed`` → list the calendar in full.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from connectors.registry import Batch, Incoming, Lifecycle, Notification, Reply

CHANGE_TYPES = "created,updated,deleted"
MAX_MINUTES = 4230  # Graph's longest subscription on Outlook events
_MAX_TOKEN = 2048  # a validation token is short; anything longer is not one
_LIFECYCLE: dict[str, Lifecycle] = {
    "reauthorizationRequired": "renew",
    "subscriptionRemoved": "recreate",
    "missed": "resync",
}


def resource(calendar_id: str) -> str:
    """The subscription resource of one calendar's events."""
    return f"me/calendars/{calendar_id}/events"


def expiry(now: datetime, minutes: float) -> str:
    """A subscription's expirationDateTime `minutes` from `now`, capped at Graph's maximum."""
    until = now + timedelta(minutes=min(minutes, MAX_MINUTES))
    return until.isoformat().replace("+00:00", "Z")


def subscription_body(
    calendar_id: str, address: str, token: str, now: datetime, minutes: float
) -> dict[str, Any]:
    """The POST /subscriptions body for one calendar (lifetime capped at Graph's maximum)."""
    return {
        "changeType": CHANGE_TYPES,
        "notificationUrl": address,
        "lifecycleNotificationUrl": address,
        "resource": resource(calendar_id),
        "expirationDateTime": expiry(now, minutes),
        "clientState": token,
    }


def read_notification(request: Incoming) -> Notification | Batch | Reply | None:
    """The handshake to echo, or the notifications in a Graph webhook request; None if neither."""
    token = request.query.get("validationToken")
    if token is not None:
        if not token or len(token) > _MAX_TOKEN:
            return None
        return Reply(200, token, "text/plain")
    try:
        payload = json.loads(request.body)
    except ValueError:
        return None
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        return None
    notes = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("subscriptionId"), str):
            return None
        state = item.get("clientState")
        event = item.get("lifecycleEvent")
        notes.append(
            Notification(
                item["subscriptionId"],
                state if isinstance(state, str) else None,
                None,  # a notification names the changed event, not the subscribed resource
                changed=event is None and bool(item.get("changeType")),
                lifecycle=_LIFECYCLE.get(str(event)) if event is not None else None,
            )
        )
    return Batch(tuple(notes), accepted=202)
