"""The SMS opt-out list, kept as keyed hashes: STOP is honoured after the person is erased, and
no phone number is stored.

A number is looked up by HMAC-SHA256 of its E.164 form under a random key of the daemon's
(`stored_keys` row ``sms-optouts``, encrypted under the secrets key, re-encrypted by `calgate
secrets rotate`, so the hashes outlive a key rotation). Without the key the hashes say nothing
about a number: a database dump alone cannot be searched for one. Losing the secrets key loses
the list (the hashes can no longer be matched): the send-time check then holds every SMS back
rather than risk texting someone who said STOP. Keep the key as the secrets of integrations
are kept. Migration 0009privacy hashed the numbers stored before.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import secrets
from gateway.store.db import session_settings
from gateway.store.notify_models import SmsOptOut
from gateway.store.privacy_models import StoredKey
from gateway.store.types import utcnow

log = logging.getLogger("calgate.notify")

KEY_ID = "sms-optouts"
_INFO_KEY = "calgate.optout_key"  # the key, per session, once read


async def _key(session: AsyncSession) -> bytes:
    """The HMAC key, created on first use (two processes racing: the first insert wins)."""
    cached = session.info.get(_INFO_KEY)
    if isinstance(cached, bytes):
        return cached
    settings = session_settings(session)
    token = await session.scalar(select(StoredKey.secret).where(StoredKey.id == KEY_ID))
    if token is None:
        try:
            async with session.begin_nested():
                session.add(StoredKey(id=KEY_ID, secret=secrets.new_stored_key(settings)))
        except IntegrityError:
            pass
        token = await session.scalar(select(StoredKey.secret).where(StoredKey.id == KEY_ID))
        assert token is not None
    key = secrets.open_stored_key(settings, token)
    session.info[_INFO_KEY] = key
    return key


async def phone_hash(session: AsyncSession, phone: str) -> str:
    """The keyed hash the list keeps for an E.164 number."""
    return secrets.keyed_hash(await _key(session), phone)


async def opted_out_since(session: AsyncSession, phone: str) -> datetime | None:
    """When `phone` answered STOP (None when it may receive SMS)."""
    row = await session.get(SmsOptOut, await phone_hash(session, phone))
    return row.opted_out_at if row is not None else None


async def is_opted_out(session: AsyncSession, phone: str) -> bool:
    """True when `phone` answered STOP (and not START since): no SMS goes to it. Also True,
    failing closed, when the list's key cannot be read (the secrets key was replaced without
    its predecessor): an SMS to someone who said STOP is worse than one held back."""
    try:
        return await opted_out_since(session, phone) is not None
    except secrets.SecretUnreadable:
        log.error("the SMS opt-out list cannot be read (secrets key changed): SMS held back")
        return True


async def opt_out(session: AsyncSession, phone: str) -> bool:
    """Put `phone` on the list; True when it was not on it already."""
    digest = await phone_hash(session, phone)
    if await session.get(SmsOptOut, digest) is not None:
        return False
    session.add(SmsOptOut(phone_hash=digest, opted_out_at=utcnow()))
    await session.flush()
    return True


async def opt_in(session: AsyncSession, phone: str) -> bool:
    """Take `phone` off the list (START); True when it was on it."""
    row = await session.get(SmsOptOut, await phone_hash(session, phone))
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True
