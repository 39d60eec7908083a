"""Accounts (tenants) and their API keys.

A key is ``cg_`` followed by 43 url-safe characters (256 random bits). Only its SHA-256 is
stored: a fast hash is enough for a secret with that much entropy, and it makes lookup a single
indexed equality, so no per-key timing difference can be measured.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.contacts import require_country, require_zone
from gateway.domain.text import require_one_line
from gateway.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from gateway.store.models import Account, ApiKey
from gateway.store.types import utcnow

KEY_PREFIX = "cg_"
# Writing last_used_at on every request would turn each read into a write; a minute is enough.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    """A newly created key: `secret` exists only here, it is never stored or shown again."""

    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    """The stored form of an API key (or any other high-entropy bearer token)."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_account(
    session: AsyncSession, name: str, *, timezone: str, country: str
) -> tuple[Account, IssuedKey]:
    """Create an account and its first API key (named "default")."""
    name = require_one_line("name", name.strip())
    if not name:
        raise ValidationFailed.one("name", "must not be empty")
    account = Account(name=name, timezone=require_zone(timezone), country=require_country(country))
    session.add(account)
    await session.flush()
    return account, await issue_key(session, account, "default")


async def issue_key(session: AsyncSession, account: Account, name: str) -> IssuedKey:
    """Create a named API key for `account`; the secret is returned once."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        account_id=account.id,
        name=name.strip() or "unnamed",
        prefix=secret[:10],
        secret_hash=hash_secret(secret),
    )
    session.add(key)
    await session.flush()
    return IssuedKey(key, secret)


async def authenticate(session: AsyncSession, secret: str) -> tuple[Account, ApiKey]:
    """The account and key a bearer secret belongs to; 401 when unknown or revoked."""
    row = (
        await session.execute(
            select(ApiKey, Account)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.secret_hash == hash_secret(secret), ApiKey.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        raise Unauthorized("unknown or revoked API key")
    key, account = row
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        key.last_used_at = now
    return account, key


async def list_keys(session: AsyncSession, account: Account) -> list[ApiKey]:
    """Every key of the account, revoked ones included, oldest first."""
    query = select(ApiKey).where(ApiKey.account_id == account.id).order_by(ApiKey.id)
    return list((await session.scalars(query)).all())


async def revoke_key(session: AsyncSession, account: Account, key_id: str) -> ApiKey:
    """Revoke one key of the account at once (idempotent)."""
    key = await session.scalar(
        select(ApiKey).where(ApiKey.account_id == account.id, ApiKey.id == key_id)
    )
    if key is None:
        raise NotFound("no such API key")
    if key.revoked_at is None:
        others = await session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(
                ApiKey.account_id == account.id, ApiKey.id != key.id, ApiKey.revoked_at.is_(None)
            )
        )
        if not others:
            # Revoking the last key would lock the account out of the API for good.
            raise Conflict(
                "this is the account's last active API key: create another key first, "
                "then revoke this one"
            )
        key.revoked_at = utcnow()
    return key


async def update_account(
    session: AsyncSession, account: Account, changes: dict[str, Any]
) -> Account:
    """Change the account's name, default zone or country (each validated)."""
    for name in ("name", "timezone", "country"):
        if name in changes and changes[name] is None:
            raise ValidationFailed.one(name, "must not be null")
    if "timezone" in changes:
        account.timezone = require_zone(changes["timezone"])
    if "country" in changes:
        account.country = require_country(changes["country"])
    if "name" in changes:
        account.name = changes["name"].strip()
    await session.flush()
    return account


async def get_account(session: AsyncSession, account_id: str) -> Account:
    """The account with this id, or NotFound."""
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound("no such account")
    return account
