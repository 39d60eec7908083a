"""Graph's change notifications: the subscription body, and webhook requests read for the engine.

- A subscription per synced calendar on ``me/calendars/{id}/events`` (created, updated,
  deleted), at most 4,230 minutes long, with the engine's random token as ``clientState`` (Graph
  echoes it in every notification; the engine keeps only its hash). Lifecycle notifications go to
  the same address.
- Creating one, Graph first POSTs ``?validationToken=...`` to the address and wants it back as
  ``200 text/plain`` within 10 seconds: answered as a `Reply`, before anything else is read.
- Renewal PATCHes the expiration (same id, same clientState, no new handshake).
- Each notification names the tenant it comes from (``tenantId``; some lifecycle notifications
  say ``organizationId``). A subscription keeps its grant's tenant as the channel's resource id,
  which the engine compares with the notification's, so one from another tenant is refused like
  a wrong clientState. Not for personal accounts: Graph does not document which tenant their
  notifications name, so their subscriptions keep none and only clientState is checked.
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


# The tenant of every personal Microsoft account (the `tid` of their id tokens).
PERSONAL_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def grant_tenant(home_account_id: str) -> str:
    """The tenant a grant's notifications come from: the second half of msal's home account id
    (``<object id>.<tenant id>``, from the token answer's client_info); "" (nothing to check)
    for a personal account or an id without a tenant."""
    _, dot, tenant = home_account_id.partition(".")
    tenant = tenant.lower()
    return "" if not dot or tenant == PERSONAL_TENANT else tenant


def _tenant(item: dict[str, Any]) -> str | None:
    named = item.get("tenantId") or item.get("organizationId")
    return named.lower() if isinstance(named, str) else None


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
                _tenant(item),
                changed=event is None and bool(item.get("changeType")),
                lifecycle=_LIFECYCLE.get(str(event)) if event is not None else None,
            )
        )
    return Batch(tuple(notes), accepted=202)
