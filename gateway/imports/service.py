"""One entry point for imports, shared by `POST /v1/imports` and `calgate import`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.appointments import NOTIFY_MODES, NOTIFY_REMINDERS
from gateway.errors import ValidationFailed
from gateway.imports.clients import import_clients
from gateway.imports.events import import_events
from gateway.imports.report import ImportReport
from gateway.imports.streams import limited, text_lines
from gateway.store.models import Account

log = logging.getLogger("calgate.imports")
KINDS = ("clients", "appointments")


async def run_import(
    session: AsyncSession,
    account: Account,
    kind: str,
    chunks: AsyncIterator[bytes],
    *,
    user_id: str | None = None,
    max_bytes: int | None = None,
    notify: str = NOTIFY_REMINDERS,
) -> ImportReport:
    """Import `chunks` (a CSV of clients, or an .ics of appointments of `user_id`, whose
    notifications `notify` says: gateway/imports/events.py)."""
    body = limited(chunks, max_bytes)
    if kind == "clients":
        report = await import_clients(session, account, text_lines(body))
    elif kind == "appointments":
        if not user_id:
            raise ValidationFailed.one("user_id", "is required to import appointments")
        if notify not in NOTIFY_MODES:
            raise ValidationFailed.one("notify", f"must be one of {', '.join(NOTIFY_MODES)}")
        report = await import_events(session, account, user_id, body, notify)
    else:
        raise ValidationFailed.one("kind", f"must be one of {', '.join(KINDS)}")
    # Counts only: nothing of the file goes to the log.
    log.info(
        "import",
        extra={
            "account_id": account.id,
            "kind": kind,
            "rows": report.rows,
            "imported": report.imported,
            "rejected": report.rejected,
        },
    )
    return report
