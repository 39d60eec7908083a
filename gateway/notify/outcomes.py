"""Recording what became of each send: group commit of outcomes into the outbox and its log.

Every outcome that finished while the previous transaction ran is stored by the next one. One
SQLite commit per message would cap throughput far below what SMTP does; the crash window grows
only by the messages of one group. A group of a few messages costs nearly as much as a large
one, so a small group waits a few milliseconds for company.

Outcomes name our lease: a row taken over by another process after our lease expired is not
overwritten. A failure keeps the provider's code, its words (contact details masked) and our
sentence for the practitioner in the attempt's `detail`, which the delivery log shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.notify import optouts, topics
from gateway.notify.channels.base import ChannelError, Receipt
from gateway.notify.channels.sms import OPTED_OUT_CODE
from gateway.store.db import Store
from gateway.store.models import Client
from gateway.store.notify_models import (
    FAILED,
    PENDING,
    SENT,
    DeliveryAttempt,
    OutboxMessage,
)
from gateway.store.types import utcnow
from gateway.worker import backoff

log = logging.getLogger("calgate.notify")

_GROUP_MIN = 32
_GROUP_WAIT = 0.004  # seconds

_OUTBOX = cast(Table, OutboxMessage.__table__)
_LOG = cast(Table, DeliveryAttempt.__table__)
# Sent; a row withdrawn while we were sending went out all the same but stays withdrawn.
_SENT_RELEASE = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
        _OUTBOX.c.lease_owner == bindparam("owner"),
    )
    .values(
        status=case((_OUTBOX.c.status == PENDING, SENT), else_=_OUTBOX.c.status),
        lease_owner=None,
        lease_expires_at=None,
        sent_at=bindparam("now"),
        updated_at=bindparam("now"),
        last_error=None,
    )
)
_ATTEMPTS_SENT = (
    update(_LOG)
    .where(_LOG.c.id.in_(bindparam("ids", expanding=True)))
    .values(finished_at=bindparam("now"), outcome="sent")
)


@dataclass(frozen=True)
class Attempt:
    """One claimed row being sent: its outbox id and the delivery-log entry opened for it."""

    row_id: str
    attempt_id: str
    attempt: int


@dataclass(frozen=True)
class _Outcome:
    attempt: Attempt
    receipt: Receipt | None
    error: ChannelError | None
    done: asyncio.Future[None]


class OutcomeWriter:
    """Stores outcomes by group commit on behalf of the lease `owner`."""

    def __init__(
        self,
        store: Store,
        owner: str,
        turn: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
        stopping: Callable[[], bool],
    ) -> None:
        self.store = store
        self.owner = owner
        self._turn = turn
        self._stopping = stopping
        self._outcomes: list[_Outcome] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(
        self, attempt: Attempt, receipt: Receipt | None, error: ChannelError | None
    ) -> None:
        """Queue the outcome for the next group commit and wait until it is stored."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append(_Outcome(attempt, receipt, error, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_outcomes())
        await asyncio.shield(done)

    async def _write_outcomes(self) -> None:
        while self._outcomes:
            if len(self._outcomes) < _GROUP_MIN and not self._stopping():
                await asyncio.sleep(_GROUP_WAIT)
            group, self._outcomes = self._outcomes, []
            try:
                await self._store(group)
            except Exception as exc:
                for o in group:
                    if not o.done.done():
                        o.done.set_exception(exc)
                continue
            for o in group:
                if not o.done.done():
                    o.done.set_result(None)

    async def _store(self, group: list[_Outcome]) -> None:
        now = utcnow()
        # The common case, an email accepted, in two statements for the whole group; every
        # other outcome row by row below.
        plain = [o for o in group if o.error is None and o.receipt == Receipt()]
        rest = [o for o in group if not (o.error is None and o.receipt == Receipt())]
        async with self._turn(), self.store.transaction() as session:
            if plain:
                await self._store_plain_successes(session, plain, now)
            if rest:
                await self._store_each(session, rest, now)
            await topics.outcomes_stored(session, [o.attempt.row_id for o in group])
        log.info("notification outcomes stored", extra={"count": len(group)})

    async def _store_plain_successes(
        self, session: AsyncSession, plain: list[_Outcome], now: datetime
    ) -> None:
        # Prebuilt Core statements: building ORM statements per group cost more than running them.
        mine = {"ids": [o.attempt.row_id for o in plain], "owner": self.owner, "now": now}
        await session.execute(_SENT_RELEASE, mine)
        attempt_ids = [o.attempt.attempt_id for o in plain]
        await session.execute(_ATTEMPTS_SENT, {"ids": attempt_ids, "now": now})

    async def _store_each(
        self, session: AsyncSession, group: list[_Outcome], now: datetime
    ) -> None:
        ids = [o.attempt.row_id for o in group]
        owned = {
            r.id: r
            for r in await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.id.in_(ids), OutboxMessage.lease_owner == self.owner
                )
            )
        }
        attempts = {
            a.id: a
            for a in await session.scalars(
                select(DeliveryAttempt).where(
                    DeliveryAttempt.id.in_([o.attempt.attempt_id for o in group])
                )
            )
        }
        for o in group:
            error, receipt = o.error, o.receipt
            row = owned.get(o.attempt.row_id)
            outcome = "sent" if error is None else ("failed" if error.permanent else "retry")
            if row is not None:
                outcome = settle(row, receipt, error, now)
            entry = attempts.get(o.attempt.attempt_id)
            if entry is not None:
                entry.finished_at = now
                entry.outcome = outcome
                entry.error = error.code if error else None
                entry.provider_id = receipt.provider_id if receipt else None
                detail: dict[str, Any] = error.detail() if error else {}
                if receipt and receipt.segments is not None:
                    detail["segments"] = receipt.segments
                entry.detail = detail or None
            if error is not None and error.code == f"twilio {OPTED_OUT_CODE}" and row:
                await _opt_out_recipient(session, row)
            log.debug(
                "notification attempt",
                extra={
                    "outbox_id": o.attempt.row_id,
                    "attempt": o.attempt.attempt,
                    "outcome": outcome,
                    "error": error.code if error else None,
                },
            )


def settle(
    row: OutboxMessage, receipt: Receipt | None, error: ChannelError | None, now: datetime
) -> str:
    """Give `row`'s lease back with the outcome of its send; returns the log's outcome."""
    row.lease_owner = None
    row.lease_expires_at = None
    row.updated_at = now
    if error is None:
        assert receipt is not None
        if row.status == PENDING:  # a status callback may have won the race
            row.status = SENT
        row.sent_at = now
        row.provider_id = receipt.provider_id or row.provider_id
        row.segments = receipt.segments
        row.last_error = None
        return "sent"
    row.last_error = error.code
    if row.status != PENDING:  # withdrawn while we were sending: leave it withdrawn
        return "failed" if error.permanent else "dropped"
    if error.permanent:
        row.status = FAILED
        return "failed"
    next_due = now + backoff(row.attempts)
    if error.retry_after is not None:  # the provider said when (Retry-After): not sooner
        next_due = max(next_due, now + timedelta(seconds=error.retry_after))
    if next_due >= row.deadline_at:
        row.status = FAILED
        row.last_error = f"gave up before the deadline: {error.code}"[:200]
        return "failed"
    row.due_at = next_due
    return "retry"


async def _opt_out_recipient(session: AsyncSession, row: OutboxMessage) -> None:
    client = await session.get(Client, row.recipient_id)
    if client is not None and client.phone and await optouts.opt_out(session, client.phone):
        # Twilio refused the send because the number answered STOP (21610): the booking
        # product hears of it as it would of a STOP reply.
        await topics.sms_opt_changed(session, client.phone, opted_out=True)
