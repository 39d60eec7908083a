"""Downloadable reports: the account's appointments as CSV, streamed.

One row per appointment in start order, times on the clock of the zone it was booked in (with
their UTC offset, so a DST day is unambiguous), its status, practitioner, client and how many
notifications were sent. Cells a spreadsheet would run as a formula are neutralised (OWASP
"CSV injection"): a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_

from gateway.store.db import Store
from gateway.store.models import Appointment, Client, User
from gateway.store.notify_models import DELIVERED, SENT, OutboxMessage
from gateway.timezones import zone

BATCH = 500
COLUMNS = (
    "appointment_id",
    "start_local",
    "end_local",
    "timezone",
    "status",
    "title",
    "location",
    "practitioner",
    "client",
    "client_email",
    "client_phone",
    "notifications_sent",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ReportFilter:
    """Which appointments: of one practitioner or all, overlapping [start, end) or all."""

    account_id: str
    user_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def safe_cell(value: Any) -> str:
    """A cell as text that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _line(cells: Sequence[Any]) -> str:
    out = io.StringIO()
    # QUOTE_MINIMAL with \r\n: RFC 4180; commas, quotes and newlines inside cells are quoted.
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    return out.getvalue()


def _query(f: ReportFilter) -> Any:
    sent = (
        select(func.count())
        .where(
            OutboxMessage.appointment_id == Appointment.id,
            OutboxMessage.status.in_([SENT, DELIVERED]),
        )
        .correlate(Appointment)
        .scalar_subquery()
    )
    query = (
        select(Appointment, User.name, Client.name, Client.email, Client.phone, sent)
        .join(User, User.id == Appointment.user_id)
        .join(Client, Client.id == Appointment.client_id)
        .where(Appointment.account_id == f.account_id)
    )
    if f.user_id is not None:
        query = query.where(Appointment.user_id == f.user_id)
    if f.start is not None:
        query = query.where(Appointment.end_at > f.start)
    if f.end is not None:
        query = query.where(Appointment.start_at < f.end)
    return query.order_by(Appointment.start_at, Appointment.id).limit(BATCH)


async def appointments_csv(store: Store, f: ReportFilter) -> AsyncIterator[bytes]:
    """The report, a batch of rows at a time (each batch its own short transaction)."""
    # A byte-order mark, so that Excel opens the UTF-8 file with accents intact.
    yield ("\ufeff" + _line(COLUMNS)).encode()
    last: tuple[datetime, str] | None = None
    while True:
        query = _query(f)
        if last is not None:
            query = query.where(tuple_(Appointment.start_at, Appointment.id) > last)
        async with store.transaction() as session:
            rows = (await session.execute(query)).all()
        lines = []
        for apt, practitioner, client, email, phone, sent in rows:
            local = zone(apt.timezone)
            lines.append(
                _line(
                    (
                        apt.id,
                        apt.start_at.astimezone(local).isoformat(),
                        apt.end_at.astimezone(local).isoformat(),
                        apt.timezone,
                        apt.status,
                        apt.title,
                        apt.location,
                        practitioner,
                        client,
                        email,
                        phone,
                        sent,
                    )
                )
            )
        if lines:
            yield "".join(lines).encode()
        if len(rows) < BATCH:
            return
        last = (rows[-1][0].start_at, rows[-1][0].id)
