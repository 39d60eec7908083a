"""/v1/feeds: private iCal feed links of a user, a client or the whole account.

The link (with its token) is in the answers to create and rotate only; afterwards a feed shows
the token's first characters and its access record, which is how a leaked link shows itself
(more apps or addresses than the owner has).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.api.context import Caller, CallerDep, get_store, page_limit
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import ListOut, RequestModel, ResponseModel
from gateway.feeds import access as feed_access
from gateway.feeds import service
from gateway.feeds.runtime import runtime_for
from gateway.store.feed_models import Feed
from gateway.store.types import utcnow

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])

Scope = Literal["user", "client", "account"]
Privacy = Literal["full", "limited", "busy"]


class FeedCreate(RequestModel):
    """A new feed."""

    scope: Scope = Field(
        description="user: one practitioner's appointments; client: one client's own; "
        "account: everyone's"
    )
    user_id: str | None = Field(None, description="Required for scope user")
    client_id: str | None = Field(None, description="Required for scope client")
    name: str | None = Field(
        None, max_length=200, description="Calendar name shown in apps; default: the account's"
    )
    privacy: Privacy = Field(
        "busy",
        description="full: title, client name, location, notes; limited: title and location; "
        "busy: only 'Busy' and the times",
    )


class FeedUpdate(RequestModel):
    """Fields to change; absent fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=200)
    privacy: Privacy | None = None


class AppOut(BaseModel):
    """One app family that fetched the feed in the last 7 days."""

    family: str
    fetches: int
    last_fetched_at: datetime


class AccessOut(BaseModel):
    """Who fetched the feed: a link fetched by more apps or addresses than expected leaked."""

    last_fetched_at: datetime | None
    fetches_total: int
    fetches_7d: int
    distinct_apps_7d: int
    distinct_addresses_7d: int
    apps: list[AppOut]


class FeedOut(ResponseModel):
    """A feed as listed: the token's first characters only, never the token."""

    id: str
    scope: Scope
    user_id: str | None
    client_id: str | None
    name: str
    privacy: Privacy
    token_prefix: str
    created_at: datetime
    updated_at: datetime
    rotated_at: datetime | None
    access: AccessOut

    @classmethod
    def of(cls, feed: Feed, summary: feed_access.AccessSummary) -> FeedOut:
        """Build from a store row and its access summary."""
        return cls(
            id=feed.id,
            scope=feed.scope,
            user_id=feed.user_id,
            client_id=feed.client_id,
            name=feed.name,
            privacy=feed.privacy,
            token_prefix=feed.token_prefix,
            created_at=feed.created_at,
            updated_at=feed.updated_at,
            rotated_at=feed.rotated_at,
            access=AccessOut(
                last_fetched_at=feed.last_fetched_at,
                fetches_total=feed.fetch_count,
                fetches_7d=summary.fetches_7d,
                distinct_apps_7d=summary.distinct_apps_7d,
                distinct_addresses_7d=summary.distinct_addresses_7d,
                apps=[AppOut(**vars(a)) for a in summary.apps],
            ),
        )


class FeedCreated(FeedOut):
    """A feed just created or rotated: the URLs are shown this once and cannot be read again."""

    url: str = Field(description="The subscription link on the public address")
    webcal_url: str = Field(description="The same link as webcal://, which opens calendar apps")
    page_url: str = Field(
        description="The subscription page to share with a person: one-tap buttons for each "
        "calendar app, the link to copy and a QR code"
    )


async def _described(request: Request, caller: Caller, feeds: list[Feed]) -> list[FeedOut]:
    """Feeds with their access record, including the fetches this process has not written."""
    runtime = runtime_for(get_store(request), caller.settings)
    if await runtime.recorder.flush(caller.session):
        for feed in feeds:
            await caller.session.refresh(feed)
    summaries = await feed_access.summaries(caller.session, [f.id for f in feeds], utcnow())
    return [FeedOut.of(feed, summaries[feed.id]) for feed in feeds]


async def _issued(
    request: Request, caller: Caller, idem: IdempotencyDep, issued: service.IssuedFeed, status: int
) -> JSONResponse:
    (listed,) = await _described(request, caller, [issued.feed])
    url, webcal = service.feed_urls(caller.settings.public_url, issued.token)
    page = service.feed_page_url(caller.settings.public_url, issued.token)
    out = FeedCreated(**listed.model_dump(), url=url, webcal_url=webcal, page_url=page)
    # A replay answers without the URLs: the token is never stored in the clear.
    return await idem.respond(status, out, remember=listed)


@router.post("", status_code=201, response_model=FeedCreated)
async def create_feed(
    request: Request, body: FeedCreate, caller: CallerDep, idem: IdempotencyDep
) -> JSONResponse:
    """Create a feed. Its URL is in this answer only; a replay of the same Idempotency-Key
    returns the feed without it."""
    if (replay := await idem.replay(body)) is not None:
        return replay
    issued = await service.create_feed(
        caller.session, caller.account, body.model_dump(exclude_unset=True)
    )
    return await _issued(request, caller, idem, issued, 201)


@router.get("", response_model=ListOut[FeedOut])
async def list_feeds(
    request: Request,
    caller: CallerDep,
    scope: Scope | None = None,
    user_id: str | None = None,
    client_id: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> ListOut[FeedOut]:
    """The account's feeds, oldest first, with their access record."""
    where = service.FeedFilter(scope=scope, user_id=user_id, client_id=client_id)
    page = await service.list_feeds(
        caller.session, caller.account, where, limit=page_limit(caller, limit), cursor=cursor
    )
    data = await _described(request, caller, page.items)
    return ListOut[FeedOut](data=data, next_cursor=page.next_cursor)


@router.get("/{feed_id}", response_model=FeedOut)
async def get_feed(request: Request, feed_id: str, caller: CallerDep) -> FeedOut:
    """One feed: last fetch, fetches in the last 7 days, and which apps fetched it."""
    feed = await service.get_feed(caller.session, caller.account, feed_id)
    (out,) = await _described(request, caller, [feed])
    return out


@router.patch("/{feed_id}", response_model=FeedOut)
async def update_feed(
    request: Request, feed_id: str, body: FeedUpdate, caller: CallerDep
) -> FeedOut:
    """Rename the feed or change its privacy level (apps see it at their next refresh)."""
    feed = await service.update_feed(
        caller.session, caller.account, feed_id, body.model_dump(exclude_unset=True)
    )
    (out,) = await _described(request, caller, [feed])
    return out


@router.post("/{feed_id}/rotate", response_model=FeedCreated)
async def rotate_feed(
    request: Request, feed_id: str, caller: CallerDep, idem: IdempotencyDep
) -> JSONResponse:
    """Issue a new URL; the old one answers 404 from now on."""
    if (replay := await idem.replay()) is not None:
        return replay
    issued = await service.rotate_feed(caller.session, caller.account, feed_id)
    return await _issued(request, caller, idem, issued, 200)


@router.delete("/{feed_id}", status_code=204)
async def delete_feed(feed_id: str, caller: CallerDep) -> Response:
    """Revoke the feed: its URL answers 404 from now on."""
    await service.delete_feed(caller.session, caller.account, feed_id)
    return Response(status_code=204)
