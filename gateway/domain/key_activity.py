"""Sign-in activity of API keys: per key and day (UTC), when it was first and last used, from
which address and which client software.

The client software is the user-agent *family* (ua-parser: "curl", "Python Requests",
"Chrome"), never the raw header, which can single a person out. `last_at` moves at most once a
minute, so a busy key does not turn every read into a write. Addresses are cleared after
`usage_ip_retention_days` by the retention sweep.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from ua_parser import parse

from gateway.config import Settings
from gateway.errors import NotFound
from gateway.store.account_models import ApiKeyActivity
from gateway.store.models import Account, ApiKey

_RESOLUTION = timedelta(minutes=1)
_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,39}")


@lru_cache(maxsize=2048)
def agent_family(user_agent: str | None) -> str:
    """The family of the client software (at most 60 characters), "unknown" without a header."""
    if not user_agent or not user_agent.strip():
        return "unknown"
    found = parse(user_agent[:512])
    family = found.user_agent.family if found.user_agent else None
    if not family or family == "Other":
        # An HTTP library ua-parser does not know ("python-httpx/0.27"): its product token.
        token = _PRODUCT.match(user_agent.strip())
        family = token.group(0) if token else "Other"
    return family[:60]


async def record(
    session: AsyncSession, key: ApiKey, address: str | None, user_agent: str | None, now: datetime
) -> None:
    """Note one use of `key` (inside the request's transaction)."""
    agent = agent_family(user_agent)
    day = now.date().isoformat()
    row = await session.scalar(
        select(ApiKeyActivity).where(
            ApiKeyActivity.api_key_id == key.id,
            ApiKeyActivity.day == day,
            ApiKeyActivity.agent == agent,
            ApiKeyActivity.address == address
            if address is not None
            else ApiKeyActivity.address.is_(None),
        )
    )
    if row is None:
        session.add(
            ApiKeyActivity(
                api_key_id=key.id,
                account_id=key.account_id,
                day=day,
                agent=agent,
                address=address,
                first_at=now,
                last_at=now,
            )
        )
    elif now - row.last_at >= _RESOLUTION:
        row.last_at = now


async def activity(session: AsyncSession, account: Account, key_id: str) -> list[ApiKeyActivity]:
    """The key's activity, newest day first (404 for another account's key)."""
    owned = await session.scalar(
        select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.account_id == account.id)
    )
    if owned is None:
        raise NotFound("no such API key")
    rows = await session.scalars(
        select(ApiKeyActivity)
        .where(ApiKeyActivity.api_key_id == key_id)
        .order_by(ApiKeyActivity.day.desc(), ApiKeyActivity.first_at)
    )
    return list(rows)


async def sweep(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Clear the addresses of activity older than `usage_ip_retention_days`."""
    cutoff = now - timedelta(days=settings.usage_ip_retention_days)
    result = await session.execute(
        update(ApiKeyActivity)
        .where(ApiKeyActivity.last_at < cutoff, ApiKeyActivity.address.is_not(None))
        .values(address=None)
    )
    return {"api_key_addresses": int(result.rowcount)}  # type: ignore[attr-defined]
