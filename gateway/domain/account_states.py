"""An account's state: ``active``, ``suspended`` (payment failed) or ``deleting`` (scheduled for
deletion after `accounts_deletion_grace_days`: cancelled, or its trial or subscription expired).

While an account is not active no reminder is sent, its feeds answer 410 Gone with no body, its
calendars do not sync, and its API answers 402 (suspended) or 403 (being deleted) with the
reason, except for what lets its owner see the state and take their data out (see `ALLOWED`).
The deletion itself is a durable job (gateway/privacy/account_deletion.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import Conflict, UserError
from gateway.store.models import Account, Job
from gateway.store.types import utcnow

ACTIVE = "active"
SUSPENDED = "suspended"
DELETING = "deleting"
DELETE_JOB = "account.delete"
# (method, route) a suspended or deleting account may still call: read its state, export its
# data, ask for (or re-ask for) deletion.
ALLOWED = {("GET", "/v1/account"), ("GET", "/v1/export"), ("DELETE", "/v1/account")}


class PaymentRequired(UserError):
    """The account is suspended for a failed payment."""

    status_code = 402
    code = "account_suspended"


class AccountClosing(UserError):
    """The account is scheduled for deletion."""

    status_code = 403
    code = "account_scheduled_for_deletion"


def delete_job_key(account_id: str) -> str:
    """The key of the account's one deletion job."""
    return f"{DELETE_JOB}:{account_id}"


def active_accounts() -> Select[Any]:
    """The ids of active accounts: background work (reminders, syncs) is limited to these."""
    return select(Account.id).where(Account.status == ACTIVE)


def check_access(account: Account, method: str, route: str) -> None:
    """Raise the 402 / 403 a request of a non-active account gets (unless it is allowed)."""
    if account.status == ACTIVE or (method, route) in ALLOWED:
        return
    reason = account.status_reason or "no reason given"
    if account.status == SUSPENDED:
        raise PaymentRequired(f"the account is suspended: {reason}")
    due = account.deletion_due_at.isoformat() if account.deletion_due_at else "soon"
    raise AccountClosing(f"the account is scheduled for deletion at {due}: {reason}")


async def suspend(session: AsyncSession, account: Account, reason: str) -> Account:
    """Suspend an active account (payment failed)."""
    if account.status == DELETING:
        raise Conflict("the account is scheduled for deletion; resume it first")
    account.status, account.status_reason = SUSPENDED, reason
    account.status_changed_at = utcnow()
    await session.flush()
    return account


async def resume(session: AsyncSession, account: Account) -> Account:
    """Make the account active again, cancelling a deletion that has not run yet."""
    account.status, account.status_reason = ACTIVE, None
    account.status_changed_at, account.deletion_due_at = utcnow(), None
    job = await session.scalar(select(Job).where(Job.key == delete_job_key(account.id)))
    if job is not None:
        await session.delete(job)
    await session.flush()
    return account


async def schedule_deletion(
    session: AsyncSession, account: Account, *, reason: str, grace_days: float
) -> datetime:
    """Mark the account for deletion after the grace period and queue the durable job.

    Asking again keeps the first date (the grace period is not restarted).
    """
    now = utcnow()
    if account.status != DELETING or account.deletion_due_at is None:
        account.status, account.status_reason = DELETING, reason
        account.status_changed_at = now
        account.deletion_due_at = now + timedelta(days=grace_days)
    due = account.deletion_due_at
    key = delete_job_key(account.id)
    if await session.scalar(select(Job.id).where(Job.key == key)) is None:
        session.add(Job(kind=DELETE_JOB, key=key, payload={"account_id": account.id}, due_at=due))
    await session.flush()
    return due
