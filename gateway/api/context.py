"""Dependencies every handler shares: the transaction, the caller's account, the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain import account_states, key_activity
from gateway.domain.accounts import authenticate
from gateway.errors import Unauthorized
from gateway.store.db import Store
from gateway.store.models import Account, ApiKey
from gateway.store.types import utcnow


def get_settings(request: Request) -> Settings:
    """The daemon's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    """The daemon's store."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


async def _transaction(request: Request) -> AsyncIterator[AsyncSession]:
    # Committed when the handler returns, before the response is sent (scope="function"), so a
    # client never sees a success that was not stored.
    async with get_store(request).transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_transaction, scope="function")]


@dataclass
class Caller:
    """Who is calling: their open transaction, account and API key."""

    session: AsyncSession
    account: Account
    key: ApiKey
    settings: Settings


async def _caller(request: Request, session: SessionDep) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    account, key = await authenticate(session, secret.strip())
    await key_activity.record(
        session,
        key,
        request.client.host if request.client else None,
        request.headers.get("user-agent"),
        utcnow(),
    )
    route = str(getattr(request.scope.get("route"), "path", ""))
    account_states.check_access(account, request.method, route)
    # Read by the usage middleware after the response; ids only, never personal data.
    request.state.account_id = account.id
    request.state.api_key_id = key.id
    return Caller(session, account, key, get_settings(request))


CallerDep = Annotated[Caller, Depends(_caller)]


def page_limit(caller: Caller, limit: int | None) -> int:
    """The page size asked for, bounded by the settings."""
    if limit is None:
        return caller.settings.api_page_size
    return max(1, min(limit, caller.settings.api_max_page_size))
