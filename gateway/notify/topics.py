"""What the notification feature publishes (gateway/store/listeners.py).

Other features react through listeners registered in gateway/features.py (the webhooks write
`notification.failed` / `notification.delivered` and `client.sms_opted_out` / `opted_in`
events), so gateway/notify knows none of them. Listeners run in the publisher's transaction,
so an event is stored with the change it reports (outbox), or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.store.listeners import publish

# Event: the ids of outbox rows whose outcome was just stored (sent, delivered, failed...);
# listeners read the rows and pick those that reached a state they report.
NOTIFICATION_OUTCOMES = "notification.outcomes"
# Event: an SmsOptChange, after the opt-out list changed for the number.
SMS_OPT_CHANGED = "notification.sms_opt_changed"


@dataclass(frozen=True)
class SmsOptChange:
    """A number opted out of SMS (STOP, or Twilio's 21610) or back in (START)."""

    phone: str
    opted_out: bool


async def outcomes_stored(session: AsyncSession, outbox_ids: Sequence[str]) -> None:
    """Publish that the outcomes of `outbox_ids` are stored in this transaction."""
    if outbox_ids:
        await publish(session, NOTIFICATION_OUTCOMES, list(outbox_ids))


async def sms_opt_changed(session: AsyncSession, phone: str, *, opted_out: bool) -> None:
    """Publish that `phone` opted out of SMS (`opted_out`) or back in."""
    await publish(session, SMS_OPT_CHANGED, SmsOptChange(phone, opted_out))
