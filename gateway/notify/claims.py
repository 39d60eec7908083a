"""Claim-time checks: is a claimed notification still to be sent, and what does it need?

Inside the claim's short transaction each row is checked (cancelled? past its deadline?
participant deleted? consent withdrawn or opted out?) and either settled without a send
(`Settle`) or read into a `compose.Snapshot`. `Loaded` caches the rows of one claim, so a batch
costs a few queries, not a few per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.notify import optouts
from gateway.notify import prefs as prefs_mod
from gateway.notify.compose import Snapshot
from gateway.notify.planner import sms_block_reason
from gateway.notify.rendering import Overrides
from gateway.store.models import Account, Appointment, Client, User
from gateway.store.notify_models import (
    CANCELLED,
    FAILED,
    SKIPPED,
    SUPPRESSED,
    NotifyAccountSettings,
    NotifyTemplate,
    OutboxMessage,
)
from gateway.web.client_links import client_page_url
from gateway.web.short_links import short_link

# The outbox columns a claim reads (plain rows, not ORM objects).
CLAIMED = (
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


@dataclass(frozen=True)
class Settle:
    """A claimed row settled without a send: its new status and last error."""

    status: str
    error: str | None


async def load_overrides(session: AsyncSession, account_id: str) -> Overrides:
    """An account's template overrides."""
    rows = await session.scalars(
        select(NotifyTemplate).where(NotifyTemplate.account_id == account_id)
    )
    return {(t.channel, t.kind, t.locale, t.part): t.source for t in rows}


async def check(ctx: Loaded, row: Row[Any], now: datetime) -> Snapshot | Settle:
    """What to send for `row` (columns `CLAIMED`), or how to settle it without sending."""
    appointment = await ctx.appointment(row.appointment_id)
    if appointment is None:
        return Settle(CANCELLED, row.last_error)
    if appointment.status == "cancelled" and row.kind != "cancellation":
        return Settle(CANCELLED, "appointment cancelled")
    if now >= row.deadline_at:
        return Settle(
            SKIPPED if row.attempts == 0 else FAILED,
            "deadline passed" + (f" ({row.last_error})" if row.last_error else ""),
        )
    account = await ctx.account(row.account_id)
    user = await ctx.user(appointment.user_id)
    client = await ctx.client(appointment.client_id)
    if account is None or user is None or client is None:
        return Settle(CANCELLED, "participant deleted")
    prefs = await ctx.prefs(account)
    # The row's own recipient: after a change of client it may no longer be the
    # appointment's (a farewell cancellation to the previous one).
    person: Client | User | None = (
        (client if row.recipient_id == client.id else await ctx.client(row.recipient_id))
        if row.recipient_type == "client"
        else (user if row.recipient_id == user.id else await ctx.user(row.recipient_id))
    )
    if person is None:
        return Settle(CANCELLED, "recipient deleted")
    if row.channel == "sms":
        assert isinstance(person, Client)
        opted = person.phone is not None and await ctx.opted_out(person.phone)
        reason = sms_block_reason(person, prefs.sms_countries, opted)
        if reason is not None or not prefs.sms_enabled or not person.notify_sms:
            return Settle(SUPPRESSED, reason or "SMS turned off")
    elif not person.email:
        return Settle(SUPPRESSED, "no email address")
    elif not prefs.email_enabled or (isinstance(person, Client) and not person.notify_email):
        return Settle(SUPPRESSED, "email turned off")
    return Snapshot(
        row_id=row.id,
        kind=row.kind,
        channel=row.channel,
        offset_minutes=row.offset_minutes,
        recipient_type=row.recipient_type,
        message_id=row.message_id,
        name=person.name,
        locale=person.locale,
        zone=person.timezone or user.timezone,  # a client without a zone: the practitioner's
        email=person.email,
        phone=person.phone,
        client_name=client.name,
        practitioner_name=user.name,
        appointment_id=appointment.id,
        version=appointment.version,
        start=appointment.start_at,
        end=appointment.end_at,
        title=appointment.title,
        location=appointment.location,
        prefs=prefs,
        overrides=await ctx.overrides(account.id),
        public_url=ctx.settings.public_url,
        now=now,
        manage_url=await _page_link(ctx, row, person, now),
    )


async def _page_link(ctx: Loaded, row: Row[Any], person: Client | User, now: datetime) -> str:
    """The client's own page: the signed link in emails (one per client and hour, cached), a
    short link stored now in SMS (the signed one would fill most of a message)."""
    if row.recipient_type != "client":
        return ""
    assert isinstance(person, Client)
    if row.channel == "sms":
        return await short_link(ctx.session, ctx.settings, person, now)
    return client_page_url(ctx.settings, person.id, person.email, person.phone)


class Loaded:
    """Per-claim caches of the rows the checks need (one query per distinct id)."""

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
        """An account, None when it is gone."""
        if ident not in self._accounts:
            self._accounts[ident] = await self.session.get(Account, ident)
        return self._accounts[ident]

    async def user(self, ident: str) -> User | None:
        """A practitioner, None when deleted."""
        if ident not in self._users:
            self._users[ident] = await self.session.get(User, ident)
        return self._users[ident]

    async def client(self, ident: str) -> Client | None:
        """A client, None when deleted."""
        if ident not in self._clients:
            self._clients[ident] = await self.session.get(Client, ident)
        return self._clients[ident]

    async def prefs(self, account: Account) -> prefs_mod.Prefs:
        """The account's effective preferences."""
        if account.id not in self._prefs:
            row = await self.session.get(NotifyAccountSettings, account.id)
            self._prefs[account.id] = prefs_mod.effective(self.settings, account, row)
        return self._prefs[account.id]

    async def overrides(self, account_id: str) -> Overrides:
        """The account's template overrides."""
        if account_id not in self._overrides:
            self._overrides[account_id] = await load_overrides(self.session, account_id)
        return self._overrides[account_id]

    async def opted_out(self, phone: str) -> bool:
        """True when `phone` answered STOP."""
        if phone not in self._optouts:
            self._optouts[phone] = await optouts.is_opted_out(self.session, phone)
        return self._optouts[phone]
