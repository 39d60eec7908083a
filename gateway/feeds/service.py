"""Feeds as resources: create, list, read, change, rotate, delete (the rules, not the HTTP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.accounts import hash_secret
from gateway.domain.pagination import Page, paginate
from gateway.domain.scoping import apply_changes, get_owned
from gateway.errors import ValidationFailed
from gateway.feeds import tokens
from gateway.store.feed_models import Feed
from gateway.store.models import Account, Client, User
from gateway.store.types import utcnow

SCOPES = ("user", "client", "account")
PRIVACY = ("full", "limited", "busy")
PATH = "/feeds/{token}.ics"
PAGE_PATH = "/feeds/{token}"


@dataclass(frozen=True)
class IssuedFeed:
    """A feed with its token: exists only in the answer to create and rotate."""

    feed: Feed
    token: str


@dataclass(frozen=True)
class FeedFilter:
    """What to list."""

    scope: str | None = None
    user_id: str | None = None
    client_id: str | None = None


def feed_urls(public_url: str, token: str) -> tuple[str, str]:
    """The subscription URL on the public address, and the same as ``webcal://``."""
    url = public_url.rstrip("/") + PATH.format(token=token)
    parts = urlsplit(url)
    return url, f"webcal://{parts.netloc}{parts.path}"


def feed_page_url(public_url: str, token: str) -> str:
    """The feed's subscription page (gateway/web/feed_page.py): the same secret, no extension."""
    return public_url.rstrip("/") + PAGE_PATH.format(token=token)


def _check_scope(scope: str, user_id: str | None, client_id: str | None) -> None:
    if scope not in SCOPES:
        raise ValidationFailed.one("scope", "must be user, client or account")
    if scope == "user" and not user_id:
        raise ValidationFailed.one("user_id", "is required for a user feed")
    if scope == "client" and not client_id:
        raise ValidationFailed.one("client_id", "is required for a client feed")
    if scope != "user" and user_id is not None:
        raise ValidationFailed.one("user_id", f"must not be set for a {scope} feed")
    if scope != "client" and client_id is not None:
        raise ValidationFailed.one("client_id", f"must not be set for a {scope} feed")


async def create_feed(
    session: AsyncSession, account: Account, values: dict[str, Any]
) -> IssuedFeed:
    """Create a feed; a user or client of another account is NotFound, like a missing one."""
    scope = values["scope"]
    user_id, client_id = values.get("user_id"), values.get("client_id")
    _check_scope(scope, user_id, client_id)
    if user_id is not None:
        await get_owned(session, User, account, user_id)
    if client_id is not None:
        await get_owned(session, Client, account, client_id)
    privacy = values.get("privacy") or "busy"
    if privacy not in PRIVACY:
        raise ValidationFailed.one("privacy", "must be full, limited or busy")
    token = tokens.new_token()
    feed = Feed(
        account_id=account.id,
        scope=scope,
        user_id=user_id,
        client_id=client_id,
        # The default carries no person's name: a busy feed must not show any.
        name=(values.get("name") or "").strip() or f"{account.name} appointments",
        privacy=privacy,
        token_hash=hash_secret(token),
        token_prefix=tokens.prefix(token),
        version=1,
    )
    session.add(feed)
    await session.flush()
    return IssuedFeed(feed, token)


async def get_feed(session: AsyncSession, account: Account, feed_id: str) -> Feed:
    """One feed of the account."""
    return await get_owned(session, Feed, account, feed_id)


async def update_feed(
    session: AsyncSession, account: Account, feed_id: str, changes: dict[str, Any]
) -> Feed:
    """Rename or change the privacy level; the feed's content version goes up."""
    feed = await get_owned(session, Feed, account, feed_id)
    for required in ("name", "privacy"):
        if required in changes and changes[required] is None:
            raise ValidationFailed.one(required, "must not be null")
    if "privacy" in changes and changes["privacy"] not in PRIVACY:
        raise ValidationFailed.one("privacy", "must be full, limited or busy")
    if "name" in changes:
        changes = {**changes, "name": changes["name"].strip()}
        if not changes["name"]:
            raise ValidationFailed.one("name", "must not be empty")
    if apply_changes(feed, changes):
        feed.version += 1
        feed.updated_at = utcnow()
    return feed


async def rotate_feed(session: AsyncSession, account: Account, feed_id: str) -> IssuedFeed:
    """A new token; the old URL stops working when this transaction commits."""
    feed = await get_owned(session, Feed, account, feed_id)
    token = tokens.new_token()
    feed.token_hash = hash_secret(token)
    feed.token_prefix = tokens.prefix(token)
    feed.rotated_at = feed.updated_at = utcnow()
    await session.flush()
    return IssuedFeed(feed, token)


async def delete_feed(session: AsyncSession, account: Account, feed_id: str) -> None:
    """Revoke: the feed, its token and its access record are gone."""
    feed = await get_owned(session, Feed, account, feed_id)
    await session.delete(feed)
    await session.flush()


async def list_feeds(
    session: AsyncSession, account: Account, where: FeedFilter, *, limit: int, cursor: str | None
) -> Page[Feed]:
    """The account's feeds, oldest first."""
    query = select(Feed).where(Feed.account_id == account.id)
    if where.scope:
        query = query.where(Feed.scope == where.scope)
    if where.user_id:
        query = query.where(Feed.user_id == where.user_id)
    if where.client_id:
        query = query.where(Feed.client_id == where.client_id)
    return await paginate(session, query, [Feed.id], limit=limit, cursor=cursor)
