"""Tenant scoping: the one way to load a row by id for an account."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import NotFound, ValidationFailed
from gateway.store.models import Account

M = TypeVar("M")


async def get_owned(session: AsyncSession, model: type[M], account: Account, row_id: str) -> M:
    """The row of `model` with `row_id` in `account`; NotFound otherwise, as for other tenants."""
    query: Any = select(model).where(
        model.id == row_id,  # type: ignore[attr-defined]
        model.account_id == account.id,  # type: ignore[attr-defined]
    )
    row: M | None = await session.scalar(query)
    if row is None:
        raise NotFound(f"no such {model.__name__.lower()}")
    return row


async def get_referenced(
    session: AsyncSession, model: type[M], account: Account, row_id: str, field: str
) -> M:
    """Like get_owned, for an id given inside a request body: a 422 naming `field`."""
    try:
        return await get_owned(session, model, account, row_id)
    except NotFound:
        raise ValidationFailed.one(field, f"no such {model.__name__.lower()}") from None


def apply_changes(row: Any, changes: dict[str, Any]) -> bool:
    """Set each changed attribute on `row`; True when anything actually changed."""
    changed = False
    for name, value in changes.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed
