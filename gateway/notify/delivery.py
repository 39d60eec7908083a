"""Delivery: the dispatcher that claims due notifications with leases and sends them.

One round: claim up to `notify_claim_batch` due rows (a `leases.ClaimLoop`) and, in that same
short transaction, check each (gateway/notify/claims.py), count the attempt and open its
delivery-log entry. After the commit, compose each message (gateway/notify/compose.py, one at a
time, letting the event loop serve the connections already sending in between) and send it on
its channel (gateway/notify/channels/registry.py) outside any transaction, at most
`smtp_connections` SMTP and `notify_sms_concurrency` Twilio requests at once. Outcomes are
stored by group commit (gateway/notify/outcomes.py). A message that cannot render is recorded as
a failed attempt ("render: <error>") and not retried.

At least once: a crash between the provider's acceptance and our record leaves the row leased;
when the lease expires it is sent again. The window is one send per row in flight; the
Message-ID (email) and I-Twilio-Idempotency-Token (SMS) stay the same, and the delivery log
shows the interrupted attempt (outcome empty). For the same reason a send cancelled at shutdown
keeps its lease until it expires, rather than handing the row straight to another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain import account_states
from gateway.notify import claims
from gateway.notify.channels import registry
from gateway.notify.channels.base import Channel, ChannelError, Outgoing
from gateway.notify.compose import Snapshot, compose
from gateway.notify.outcomes import Attempt, OutcomeWriter
from gateway.store import leases
from gateway.store.db import Store
from gateway.store.notify_models import FAILED, PENDING, DeliveryAttempt, OutboxMessage
from gateway.store.types import new_id, utcnow

log = logging.getLogger("calgate.notify")

_OUTBOX = cast(Table, OutboxMessage.__table__)
_LOG = cast(Table, DeliveryAttempt.__table__)
# A row settled at claim time without a send (cancelled, skipped, suppressed...): executemany.
_SETTLE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        last_error=bindparam("b_error"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("now"),
    )
)
_COUNT_ATTEMPT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(attempts=_OUTBOX.c.attempts + 1)
)
_RENDER_REASON = "the message template could not be rendered: fix the account's template"


@dataclass(frozen=True)
class Claimed:
    """One claimed row, checked, with its attempt opened and what compose needs."""

    attempt: Attempt
    snapshot: Snapshot
    lease_until: float  # time.monotonic() after which another process may own the row


class Dispatcher(leases.ClaimLoop[Claimed]):
    """Sends due notifications; one per process, ticked by the scheduler."""

    model = OutboxMessage

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__(store, timedelta(seconds=settings.notify_lease_seconds))
        self.owner = "notify:" + self.owner
        self.settings = settings
        self.claim_batch = settings.notify_claim_batch  # pipelined ticks (leases.ClaimLoop)
        self.channels: dict[str, Channel] = registry.load(settings)
        # SQLite has one writer: our claim and outcome transactions take turns here instead of
        # meeting in SQLite's busy handler, which sleeps whole milliseconds between tries.
        self._write_turn = asyncio.Lock() if store.dialect == "sqlite" else None
        self.outcomes = OutcomeWriter(store, self.owner, self._turn, lambda: self._stopping)

    @property
    def ready(self) -> list[str]:
        """The channels this process can send on (an unconfigured one leaves its rows waiting)."""
        return [name for name, channel in self.channels.items() if channel.configured]

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_turn if self._write_turn is not None else contextlib.nullcontext()

    def _may_claim(self) -> bool:
        return bool(self.ready)

    async def stop(self, grace: float) -> None:
        """Stop claiming; let sends in flight finish within `grace` seconds; close channels."""
        await super().stop(grace)
        await self.close()

    async def close(self) -> None:
        """Close the channels' idle connections."""
        for channel in self.channels.values():
            await channel.close()

    # -- claiming --------------------------------------------------------------------------

    def _item_id(self, item: Claimed) -> str:
        return item.attempt.row_id

    async def _claim(self, session: AsyncSession) -> list[Claimed]:
        now = utcnow()
        rows = await leases.claim(
            session,
            OutboxMessage,
            owner=self.owner,
            limit=self.settings.notify_claim_batch,
            lease=self.lease,
            now=now,
            where=[
                OutboxMessage.status == PENDING,
                OutboxMessage.channel.in_(self.ready),
                # Nothing is sent for a suspended account (or one being deleted).
                OutboxMessage.account_id.in_(account_states.active_accounts()),
            ],
            columns=claims.CLAIMED,  # plain rows and a Core lease stamp: no ORM objects
        )
        if not rows:
            return []
        context = claims.Loaded(session, self.settings)
        await context.preload(rows)
        with session.sync_session.no_autoflush:
            return await self._check_all(session, context, rows, now)

    async def _check_all(
        self, session: AsyncSession, context: claims.Loaded, rows: list[Row[Any]], now: datetime
    ) -> list[Claimed]:
        claimed: list[Claimed] = []
        attempts: list[dict[str, Any]] = []
        settled: list[dict[str, Any]] = []
        # A margin of a fifth of the lease for clock skew between processes.
        lease_until = time.monotonic() + self.lease.total_seconds() * 0.8
        for row in rows:
            try:
                checked = await claims.check(context, row, now)
            except Exception as exc:  # a bug in a check must not stop the round: never retried
                log.warning("notification not prepared", extra={"outbox_id": row.id})
                checked = claims.Settle(FAILED, f"prepare: {type(exc).__name__}")
            if isinstance(checked, claims.Settle):  # settled without sending; lease given back
                settle = {"b_id": row.id, "b_status": checked.status, "b_error": checked.error}
                settled.append({**settle, "now": now})
                continue
            attempt = Attempt(row.id, new_id("att"), row.attempts + 1)  # counted below
            attempts.append(
                {
                    "id": attempt.attempt_id,
                    "outbox_id": row.id,
                    "attempt": attempt.attempt,
                    "started_at": now,
                }
            )
            claimed.append(Claimed(attempt, checked, lease_until))
        # Core statements, not one ORM object (and UPDATE) per row
        if settled:
            await session.execute(_SETTLE, settled)
        if attempts:
            ids = [a["outbox_id"] for a in attempts]
            await session.execute(_COUNT_ATTEMPT, {"ids": ids})
            await session.execute(insert(_LOG), attempts)
        return claimed

    # -- sending ---------------------------------------------------------------------------

    async def _run(self, item: Claimed) -> None:
        try:
            message: Outgoing = compose(item.snapshot)
        except Exception as exc:  # a template that cannot render fails the row for good
            log.warning("notification not renderable", extra={"outbox_id": item.attempt.row_id})
            error = ChannelError(
                f"render: {type(exc).__name__}", permanent=True, reason=_RENDER_REASON
            )
            await self.outcomes.record(item.attempt, None, error)
            return
        if time.monotonic() > item.lease_until:
            # Waited so long in the queue that the lease may have passed to another process:
            # sending now could duplicate its send. The row is re-claimed and sent once.
            log.warning(
                "notification lease ran out before sending",
                extra={"outbox_id": item.attempt.row_id},
            )
            return
        try:
            receipt = await self.channels[message.channel].send(message)
        except ChannelError as exc:
            await self.outcomes.record(item.attempt, None, exc)
        except asyncio.CancelledError:
            raise  # shutdown: the lease expires and the row is sent again
        except Exception:  # a bug must not lose the row: record it as a retry
            log.exception("notification send crashed", extra={"outbox_id": item.attempt.row_id})
            reason = "an unexpected error stopped the send; it will be retried (see the log)"
            error = ChannelError("send crashed", permanent=False, reason=reason)
            await self.outcomes.record(item.attempt, None, error)
        else:
            await self.outcomes.record(item.attempt, receipt, None)


def install(scheduler: Any, store: Store, settings: Settings) -> Dispatcher | None:
    """Add the delivery tick to `scheduler` (an APScheduler); None when notifications are off."""
    if not settings.notify_enabled:
        return None
    dispatcher = Dispatcher(store, settings)
    if not dispatcher.ready:
        log.warning("no notification channel configured: set [smtp] host or [twilio] account_sid")

    async def _tick() -> None:
        try:
            await dispatcher.tick()
        except Exception as exc:  # a failed round (database away) must not stop later ones
            log.warning("notification tick failed: %s", type(exc).__name__)

    scheduler.add_job(
        _tick,
        "interval",
        seconds=settings.notify_tick_seconds,
        id="notify",
        next_run_time=utcnow(),
    )
    return dispatcher
