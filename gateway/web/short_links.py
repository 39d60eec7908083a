"""Short links to a client's page, for SMS: ``/c/{code}`` answers 303 to the signed page link.

A signed page link (`gateway.web.client_links`) is ~130 characters, most of a text message. An
SMS carries ``{public_url}/c/{code}`` instead: 11 random URL-safe characters (66 bits, from
`secrets`). The code is stored only as its SHA-256, so a copy of the database opens no page: a
random code of that size needs no slow or salted hash, and the lookup stays one primary-key
probe. The signed link it opens is made when the code is (a fresh token, so both expire
together) and stored encrypted like every secret. A code is made per message (an SMS cannot
reuse one whose plain text we did not keep); the rows end when their link expires (the
retention sweep) or with the client (cascade).
"""

from __future__ import annotations

import hashlib
import secrets as random_source
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from gateway import secrets
from gateway.config import Settings
from gateway.secrets import SecretUnreadable
from gateway.store.db import Store
from gateway.store.models import Client
from gateway.store.types import utcnow
from gateway.store.web_models import ClientShortLink
from gateway.web import client_links, client_page, pages

SHORT_PATH = "/c/"
CODE_BYTES = 8  # 11 characters of base64url

router = APIRouter(include_in_schema=False)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii", "replace")).hexdigest()


async def short_link(
    session: AsyncSession, settings: Settings, client: Client, now: datetime
) -> str:
    """A new short link to `client`'s page, valid as long as the signed link it opens."""
    code = random_source.token_urlsafe(CODE_BYTES)
    token = client_links.make_token(settings, client.id, client.email, client.phone)
    session.add(
        ClientShortLink(
            code_hash=_digest(code),
            account_id=client.account_id,
            client_id=client.id,
            token=secrets.encrypt(settings, token),
            created_at=now,
            # The signed token counts its age from the same second (itsdangerous, whole
            # seconds): never later than it.
            expires_at=now + timedelta(days=settings.web_client_link_days),
        )
    )
    return settings.public_url.rstrip("/") + SHORT_PATH + code


async def resolve(
    session: AsyncSession, settings: Settings, code: str, now: datetime
) -> str | client_links.LinkProblem:
    """The signed page token a code opens, or why it opens nothing."""
    row = await session.get(ClientShortLink, _digest(code))
    if row is None:
        return client_links.LinkProblem.INVALID
    if row.expires_at <= now:
        return client_links.LinkProblem.EXPIRED
    try:
        return secrets.decrypt(settings, row.token)
    except SecretUnreadable:  # the secrets key was replaced: its links ended with it
        return client_links.LinkProblem.EXPIRED


async def sweep(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete the short links whose page link has expired; the count by table."""
    result = await session.execute(delete(ClientShortLink).where(ClientShortLink.expires_at <= now))
    return {"client_short_links": int(result.rowcount)}  # type: ignore[attr-defined]


@router.get(SHORT_PATH + "{code}", name="client_short_link")
async def open_short_link(request: Request, code: str) -> Response:
    """The short link of an SMS: 303 to the client's page, or a page saying why not."""
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    async with store.transaction() as session:
        found = await resolve(session, settings, code, utcnow())
    if isinstance(found, client_links.LinkProblem):
        return client_page.problem_page(request, found)
    target = request.url_for("client_page", token=found).path
    return RedirectResponse(target, status_code=303, headers=pages.SECURITY_HEADERS)
