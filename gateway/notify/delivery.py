"""Delivery: claim due outbox rows with leases, render, send, record every attempt.

One round: claim up to `notify_claim_batch` due rows (gateway/store/leases.py) and, in that
same short transaction, check each (cancelled? past its deadline? consent withdrawn? opted out?),
count the attempt and open its delivery-log entry. After the commit, render each message (one at
a time, letting the event loop serve the connections already sending in between) and send it
outside any transaction, at most `smtp_connections` SMTP and `notify_sms_concurrency` Twilio
requests at once. Outcomes are stored by group commit, naming our lease so a row taken over by
another process after our lease expired is not overwritten. A message that cannot render is
recorded as a failed attempt ("render: <error>") and not retried.

At least once: a crash between the provider's acceptance and our record leaves the row leased;
when the lease expires it is sent again. The window is one send per row in flight; the
Message-ID (email) and I-Twilio-Idempotency-Token (SMS) stay the same, and the delivery log
shows the interrupted attempt (outcome empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain import account_states
from gateway.notify import prefs as prefs_mod
from gateway.notify.channels.base import ChannelError, Receipt
from gateway.notify.channels.email import EmailEnvelope, SmtpChannel, build_message
from gateway.notify.channels.sms import OPTED_OUT_CODE, TwilioChannel, fold_to_gsm
from gateway.notify.invite import Invite, build_ics, method_of
from gateway.notify.planner import sms_block_reason
from gateway.notify.rendering import Overrides, message_context, render
from gateway.store import leases
from gateway.store.db import Store
from gateway.store.models import Account, Appointment, Client, User
from gateway.store.notify_models import (
    CANCELLED,
    FAILED,
    PENDING,
    SENT,
    SKIPPED,
    SUPPRESSED,
    DeliveryAttempt,
    NotifyAccountSettings,
    NotifyTemplate,
    OutboxMessage,
    SmsOptOut,
)
from gateway.store.types import new_id, utcnow
from gateway.worker import backoff

log = logging.getLogger("calgate.notify")

# Notices that carry an invitation, and its method.
_INVITES = {"confirmation", "rescheduled", "cancellation"}


@dataclass(frozen=True)
class EmailJob:
    """A rendered email ready to go."""

    message: bytes
    sender: str
    recipient: str


@dataclass(frozen=True)
class SmsJob:
    """A rendered SMS ready to go."""

    to: str
    body: str
    token: str
    callback: str
    sender: str | None  # the account's own; None: the daemon's


@dataclass(frozen=True)
class _Settle:
    """A claimed row settled without a send: its new status and last error."""

    status: str
    error: str | None


@dataclass(frozen=True)
class _Outcome:
    prepared: Prepared
    receipt: Receipt | None
    error: ChannelError | None
    done: asyncio.Future[None]


@dataclass(frozen=True)
class Prepared:
    """One claimed row, checked and with its attempt opened, and how to build what to send.

    `build` renders (Jinja, Babel, MIME, ICS) from values read inside the claim transaction:
    it runs after that transaction, one message at a time between I/O, so rendering neither
    holds the write lock nor stops the SMTP connections already sending.
    """

    row_id: str
    attempt_id: str
    attempts: int
    deadline: datetime
    build: Callable[[], EmailJob | SmsJob]
    lease_until: float  # time.monotonic() after which another process may own the row


async def load_overrides(session: AsyncSession, account_id: str) -> Overrides:
    """An account's template overrides."""
    rows = await session.scalars(
        select(NotifyTemplate).where(NotifyTemplate.account_id == account_id)
    )
    return {(t.channel, t.kind, t.locale, t.part): t.source for t in rows}


_GROUP_MIN = 32
_GROUP_WAIT = 0.004  # seconds

_OUTBOX = cast(Table, OutboxMessage.__table__)
_LOG = cast(Table, DeliveryAttempt.__table__)
_RELEASED: dict[str, Any] = {
    "lease_owner": None,
    "lease_expires_at": None,
    "sent_at": bindparam("now"),
    "updated_at": bindparam("now"),
    "last_error": None,
}
_MINE = (
    _OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
    _OUTBOX.c.lease_owner == bindparam("owner"),
)
# Sent; a row withdrawn while we were sending went out all the same but stays withdrawn.
_SENT_RELEASE = (
    update(_OUTBOX)
    .where(*_MINE)
    .values(status=case((_OUTBOX.c.status == PENDING, SENT), else_=_OUTBOX.c.status), **_RELEASED)
)
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
# The outbox columns a claim reads (plain rows, not ORM objects).
_CLAIMED = (
    OutboxMessage.id,
    OutboxMessage.account_id,
    OutboxMessage.appointment_id,
    OutboxMessage.recipient_type,
    OutboxMessage.recipient_id,
    OutboxMessage.channel,
    OutboxMessage.kind,
    OutboxMessage.offset_minutes,
    OutboxMessage.deadline_at,
    OutboxMessage.attempts,
    OutboxMessage.last_error,
    OutboxMessage.message_id,
)
# The appointment columns a claim reads.
_APPOINTMENT = (
    Appointment.id,
    Appointment.status,
    Appointment.user_id,
    Appointment.client_id,
    Appointment.version,
    Appointment.start_at,
    Appointment.end_at,
    Appointment.title,
    Appointment.location,
)
_COUNT_ATTEMPT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(attempts=_OUTBOX.c.attempts + 1)
)
_ATTEMPTS_SENT = (
    update(_LOG)
    .where(_LOG.c.id.in_(bindparam("ids", expanding=True)))
    .values(finished_at=bindparam("now"), outcome="sent")
)


class Dispatcher:
    """Sends due notifications; one per process, ticked by the scheduler."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.owner = f"notify:{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.lease = timedelta(seconds=settings.notify_lease_seconds)
        self.email = SmtpChannel(settings)
        self.sms = TwilioChannel(settings)
        self._stopping = False
        self._running: set[asyncio.Task[None]] = set()
        self._outcomes: list[_Outcome] = []
        self._writer: asyncio.Task[None] | None = None
        # SQLite has one writer: our claim and outcome transactions take turns here instead of
        # meeting in SQLite's busy handler, which sleeps whole milliseconds between tries.
        self._write_turn = asyncio.Lock() if store.dialect == "sqlite" else None

    @property
    def channels(self) -> list[str]:
        """The channels this process can send on (an unconfigured one leaves its rows waiting)."""
        return [c.name for c in (self.email, self.sms) if c.configured]

    async def tick(self) -> int:
        """Claim and send until nothing is due; returns how many rows were handled."""
        total = 0
        while not self._stopping:
            batch = await self._claim()
            if not batch:
                break
            for p in batch:
                task = asyncio.create_task(self._deliver(p, self._build(p)))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                # Let the loop serve the connections already sending before rendering the next.
                await asyncio.sleep(0)
            total += len(batch)
            if len(batch) < self.settings.notify_claim_batch:
                break
            # Claim (and render) the next batch while this one is sending, but keep at most
            # one batch waiting behind the one on the wire.
            while len(self._running) > self.settings.notify_claim_batch:
                await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
        if self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
        return total

    async def stop(self, grace: float) -> None:
        """Stop claiming; let sends in flight finish within `grace` seconds."""
        self._stopping = True
        running = list(self._running)
        if running:
            _done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.close()

    async def close(self) -> None:
        """Close the channels' idle connections."""
        await self.email.close()
        self.sms.close()

    # -- claiming --------------------------------------------------------------------------

    async def _claim(self) -> list[Prepared]:
        channels = self.channels
        if not channels:
            return []
        async with self._turn():
            return await self._claim_in_turn(channels)

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_turn if self._write_turn is not None else contextlib.nullcontext()

    async def _claim_in_turn(self, channels: list[str]) -> list[Prepared]:
        now = utcnow()
        async with self.store.transaction() as session:
            rows = await leases.claim(
                session,
                OutboxMessage,
                owner=self.owner,
                limit=self.settings.notify_claim_batch,
                lease=self.lease,
                now=now,
                where=[
                    OutboxMessage.status == PENDING,
                    OutboxMessage.channel.in_(channels),
                    # Nothing is sent for a suspended account (or one being deleted).
                    OutboxMessage.account_id.in_(account_states.active_accounts()),
                ],
                columns=_CLAIMED,  # plain rows and a Core lease stamp: no ORM objects
            )
            if not rows:
                return []
            context = _Loaded(session, self.settings)
            await context.preload(rows)
            with session.sync_session.no_autoflush:
                prepared = await self._prepare_all(session, context, rows, now)
        return prepared

    async def _prepare_all(
        self, session: AsyncSession, context: _Loaded, rows: list[Row[Any]], now: datetime
    ) -> list[Prepared]:
        prepared: list[Prepared] = []
        attempts: list[dict[str, Any]] = []
        settled: list[dict[str, Any]] = []
        # A margin of a fifth of the lease for clock skew between processes.
        lease_until = time.monotonic() + self.lease.total_seconds() * 0.8
        for row in rows:
            try:
                build = await self._prepare(context, row, now)
            except Exception as exc:  # a bug in a check must not stop the round: never retried
                log.warning("notification not prepared", extra={"outbox_id": row.id})
                build = _Settle(FAILED, f"prepare: {type(exc).__name__}")
            if isinstance(build, _Settle):  # settled without sending; our lease is given back
                settled.append(
                    {"b_id": row.id, "b_status": build.status, "b_error": build.error, "now": now}
                )
                continue
            attempt = row.attempts + 1  # counted by one statement below
            attempt_id = new_id("att")
            attempts.append(
                {"id": attempt_id, "outbox_id": row.id, "attempt": attempt, "started_at": now}
            )
            prepared.append(
                Prepared(row.id, attempt_id, attempt, row.deadline_at, build, lease_until)
            )
        # Core statements, not one ORM object (and UPDATE) per row
        if settled:
            await session.execute(_SETTLE, settled)
        if attempts:
            ids = [a["outbox_id"] for a in attempts]
            await session.execute(_COUNT_ATTEMPT, {"ids": ids})
            await session.execute(insert(_LOG), attempts)
        return prepared

    def _build(self, p: Prepared) -> EmailJob | SmsJob | ChannelError:
        """Render `p`'s message; a failure (a template that cannot render) fails it for good."""
        try:
            return p.build()
        except Exception as exc:
            log.warning("notification not renderable", extra={"outbox_id": p.row_id})
            return ChannelError(f"render: {type(exc).__name__}", permanent=True)

    async def _prepare(
        self, ctx: _Loaded, row: Row[Any], now: datetime
    ) -> Callable[[], EmailJob | SmsJob] | _Settle:
        """How to build what to send for `row` (columns `_CLAIMED`), or how to settle it
        without sending."""
        appointment = await ctx.appointment(row.appointment_id)
        if appointment is None:
            return _Settle(CANCELLED, row.last_error)
        if appointment.status == "cancelled" and row.kind != "cancellation":
            return _Settle(CANCELLED, "appointment cancelled")
        if now >= row.deadline_at:
            return _Settle(
                SKIPPED if row.attempts == 0 else FAILED,
                "deadline passed" + (f" ({row.last_error})" if row.last_error else ""),
            )
        account = await ctx.account(row.account_id)
        user = await ctx.user(appointment.user_id)
        client = await ctx.client(appointment.client_id)
        if account is None or user is None or client is None:
            return _Settle(CANCELLED, "participant deleted")
        prefs = await ctx.prefs(account)
        # The row's own recipient: after a change of client it may no longer be the
        # appointment's (a farewell cancellation to the previous one).
        person: Client | User | None = (
            (client if row.recipient_id == client.id else await ctx.client(row.recipient_id))
            if row.recipient_type == "client"
            else (user if row.recipient_id == user.id else await ctx.user(row.recipient_id))
        )
        if person is None:
            return _Settle(CANCELLED, "recipient deleted")
        zone = person.timezone or user.timezone  # a client without a zone: the practitioner's
        if row.channel == "sms":
            assert isinstance(person, Client)
            opted = person.phone is not None and await ctx.opted_out(person.phone)
            reason = sms_block_reason(person, prefs.sms_countries, opted)
            if reason is not None or not prefs.sms_enabled or not person.notify_sms:
                return _Settle(SUPPRESSED, reason or "SMS turned off")
        elif not person.email:
            return _Settle(SUPPRESSED, "no email address")
        elif not prefs.email_enabled or (isinstance(person, Client) and not person.notify_email):
            return _Settle(SUPPRESSED, "email turned off")
        overrides = await ctx.overrides(account.id)
        # Everything the message needs, read now inside the transaction: the build below runs
        # after the commit.
        row_id, kind, channel, offset = row.id, row.kind, row.channel, row.offset_minutes
        recipient_type, message_id = row.recipient_type, row.message_id
        name, locale, email, phone = person.name, person.locale, person.email, person.phone
        client_name, user_name = client.name, user.name
        apt_id, version = appointment.id, appointment.version
        start, end = appointment.start_at, appointment.end_at
        title, location = appointment.title, appointment.location
        public_url = self.settings.public_url

        def build() -> EmailJob | SmsJob:
            context = message_context(
                kind=kind,
                locale=locale,
                zone=zone,
                start=start,
                end=end,
                offset_minutes=offset,
                recipient_name=name,
                client_name=client_name,
                practitioner_name=user_name,
                business_name=prefs.sender_name,
                title=title,
                location=location,
                for_practitioner=recipient_type == "user",
            )
            rendered = render(channel, kind, locale, context, overrides)
            if channel == "sms":
                assert phone is not None
                callback = f"{public_url}/webhooks/twilio/status?n={row_id}"
                body = fold_to_gsm(rendered.text)
                return SmsJob(phone, body, row_id, callback, prefs.sms_sender)
            assert email is not None
            envelope = EmailEnvelope(
                message_id=message_id or f"<{row_id}@calgate>",
                from_name=prefs.sender_name,
                from_address=prefs.email_from,
                reply_to=prefs.email_reply_to,
                to_name=name,
                to_address=email,
            )
            ics = method = None
            if kind in _INVITES and recipient_type == "client":
                invite = Invite(
                    appointment_id=apt_id,
                    version=version,
                    start=start,
                    end=end,
                    summary=title,
                    location=location,
                    organizer_email=prefs.email_from,
                    organizer_name=f"{user_name} ({prefs.sender_name})",
                    attendee_email=email,
                    attendee_name=name,
                    cancelled=kind == "cancellation",
                    stamp=now,
                )
                ics, method = build_ics(invite), method_of(invite)
            message = build_message(envelope, rendered, ics, method)
            return EmailJob(message, prefs.email_from, email)

        return build

    # -- sending ---------------------------------------------------------------------------

    async def _deliver(self, p: Prepared, job: EmailJob | SmsJob | ChannelError) -> None:
        if isinstance(job, ChannelError):
            await self._record(p, None, job)
            return
        if time.monotonic() > p.lease_until:
            # Waited so long in the queue that the lease may have passed to another process:
            # sending now could duplicate its send. The row is re-claimed and sent once.
            log.warning("notification lease ran out before sending", extra={"outbox_id": p.row_id})
            return
        try:
            receipt = await self._send(job)
        except ChannelError as exc:
            await self._record(p, None, exc)
        except asyncio.CancelledError:
            raise  # shutdown: the lease expires and the row is sent again
        except Exception as exc:  # a bug must not lose the row: record it as a retry
            log.exception("notification send crashed", extra={"outbox_id": p.row_id})
            await self._record(p, None, ChannelError(type(exc).__name__, permanent=False))
        else:
            await self._record(p, receipt, None)

    async def _send(self, job: EmailJob | SmsJob) -> Receipt:
        if isinstance(job, EmailJob):
            return await self.email.send(job.message, job.sender, job.recipient)
        return await self.sms.send(job.to, job.body, job.token, job.callback, job.sender)

    async def _record(
        self, p: Prepared, receipt: Receipt | None, error: ChannelError | None
    ) -> None:
        """Queue the outcome for the next group commit and wait until it is stored."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append(_Outcome(p, receipt, error, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_outcomes())
        await asyncio.shield(done)

    async def _write_outcomes(self) -> None:
        # Group commit: every outcome that finished while the previous transaction ran is
        # stored by the next one. One SQLite commit per message would cap throughput far
        # below what SMTP does; the crash window grows only by the messages of one group.
        # A group of a few messages costs nearly as much as a large one, so a small group
        # waits a few milliseconds for company (at most _GROUP_WAIT more sends in the window).
        while self._outcomes:
            if len(self._outcomes) < _GROUP_MIN and not self._stopping:
                await asyncio.sleep(_GROUP_WAIT)
            group, self._outcomes = self._outcomes, []
            try:
                await self._store_outcomes(group)
            except Exception as exc:
                for o in group:
                    if not o.done.done():
                        o.done.set_exception(exc)
                continue
            for o in group:
                if not o.done.done():
                    o.done.set_result(None)

    async def _store_outcomes(self, group: list[_Outcome]) -> None:
        now = utcnow()
        # The common case, an email accepted, in three statements for the whole group; every
        # other outcome row by row below.
        plain: list[_Outcome] = []
        rest: list[_Outcome] = []
        for o in group:
            simple = o.error is None and o.receipt == Receipt()
            (plain if simple else rest).append(o)
        group = rest
        async with self._turn(), self.store.transaction() as session:
            if plain:
                await self._store_plain_successes(session, plain, now)
            if group:
                await self._store_each(session, group, now)
        log.info("notification outcomes stored", extra={"count": len(plain) + len(group)})

    async def _store_plain_successes(
        self, session: AsyncSession, plain: list[_Outcome], now: datetime
    ) -> None:
        # Prebuilt Core statements: building ORM statements per group cost more than running them.
        mine = {"ids": [o.prepared.row_id for o in plain], "owner": self.owner, "now": now}
        await session.execute(_SENT_RELEASE, mine)
        attempt_ids = [o.prepared.attempt_id for o in plain]
        await session.execute(_ATTEMPTS_SENT, {"ids": attempt_ids, "now": now})

    async def _store_each(
        self, session: AsyncSession, group: list[_Outcome], now: datetime
    ) -> None:
        ids = [o.prepared.row_id for o in group]
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
                    DeliveryAttempt.id.in_([o.prepared.attempt_id for o in group])
                )
            )
        }
        for o in group:
            error, receipt = o.error, o.receipt
            row = owned.get(o.prepared.row_id)
            outcome = "sent" if error is None else ("failed" if error.permanent else "retry")
            if row is not None:
                outcome = self._settle(row, receipt, error, now)
            attempt = attempts.get(o.prepared.attempt_id)
            if attempt is not None:
                attempt.finished_at = now
                attempt.outcome = outcome
                attempt.error = error.code if error else None
                attempt.provider_id = receipt.provider_id if receipt else None
                if receipt and receipt.segments is not None:
                    attempt.detail = {"segments": receipt.segments}
            if error is not None and error.code == f"twilio {OPTED_OUT_CODE}" and row:
                await self._opt_out_recipient(session, row)
            log.debug(
                "notification attempt",
                extra={
                    "outbox_id": o.prepared.row_id,
                    "attempt": o.prepared.attempts,
                    "outcome": outcome,
                    "error": error.code if error else None,
                },
            )

    def _settle(
        self,
        row: OutboxMessage,
        receipt: Receipt | None,
        error: ChannelError | None,
        now: datetime,
    ) -> str:
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
        if next_due >= row.deadline_at:
            row.status = FAILED
            row.last_error = f"gave up before the deadline: {error.code}"[:200]
            return "failed"
        row.due_at = next_due
        return "retry"

    async def _opt_out_recipient(self, session: AsyncSession, row: OutboxMessage) -> None:
        client = await session.get(Client, row.recipient_id)
        if (
            client is not None
            and client.phone
            and await session.get(SmsOptOut, client.phone) is None
        ):
            session.add(SmsOptOut(phone=client.phone, opted_out_at=utcnow()))


class _Loaded:
    """Per-claim caches of the rows rendering needs (one query per distinct id)."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._prefs: dict[str, prefs_mod.Prefs] = {}
        self._overrides: dict[str, Overrides] = {}
        self._optouts: dict[str, bool] = {}
        self._accounts: dict[str, Account | None] = {}
        self._appointments: dict[str, Any] = {}  # id -> row (columns `_APPOINTMENT`)
        self._clients: dict[str, Client | None] = {}
        self._users: dict[str, User | None] = {}

    async def preload(self, rows: list[Row[Any]]) -> None:
        """Load the appointments and people of `rows` in three queries (then served from memory).

        Appointments are read as plain rows (columns `_APPOINTMENT`), the people as objects.
        """
        apt_ids = list({r.appointment_id for r in rows})
        found = await self.session.execute(select(*_APPOINTMENT).where(Appointment.id.in_(apt_ids)))
        self._appointments = {a.id: a for a in found}
        apts = self._appointments.values()
        client_ids = list({a.client_id for a in apts})
        user_ids = list({a.user_id for a in apts})
        clients = await self.session.scalars(select(Client).where(Client.id.in_(client_ids)))
        self._clients = {c.id: c for c in clients}
        users = await self.session.scalars(select(User).where(User.id.in_(user_ids)))
        self._users = {u.id: u for u in users}

    async def appointment(self, ident: str) -> Row[Any] | None:
        """A preloaded appointment (columns `_APPOINTMENT`); None when it is gone."""
        return self._appointments.get(ident)

    async def account(self, ident: str) -> Account | None:
        if ident not in self._accounts:
            self._accounts[ident] = await self.session.get(Account, ident)
        return self._accounts[ident]

    async def user(self, ident: str) -> User | None:
        if ident not in self._users:
            self._users[ident] = await self.session.get(User, ident)
        return self._users[ident]

    async def client(self, ident: str) -> Client | None:
        if ident not in self._clients:
            self._clients[ident] = await self.session.get(Client, ident)
        return self._clients[ident]

    async def prefs(self, account: Account) -> prefs_mod.Prefs:
        if account.id not in self._prefs:
            row = await self.session.get(NotifyAccountSettings, account.id)
            self._prefs[account.id] = prefs_mod.effective(self.settings, account, row)
        return self._prefs[account.id]

    async def overrides(self, account_id: str) -> Overrides:
        if account_id not in self._overrides:
            self._overrides[account_id] = await load_overrides(self.session, account_id)
        return self._overrides[account_id]

    async def opted_out(self, phone: str) -> bool:
        if phone not in self._optouts:
            self._optouts[phone] = await self.session.get(SmsOptOut, phone) is not None
        return self._optouts[phone]


def install(scheduler: Any, store: Store, settings: Settings) -> Dispatcher | None:
    """Add the delivery tick to `scheduler` (an APScheduler); None when notifications are off."""
    if not settings.notify_enabled:
        return None
    dispatcher = Dispatcher(store, settings)
    if not dispatcher.channels:
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
