"""/v1/users: practitioners."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse
from pydantic import EmailStr, Field

from gateway.api.context import Caller, CallerDep, get_store, page_limit
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import ListOut, RequestModel, ResponseModel
from gateway.domain import people
from gateway.domain.scoping import get_owned
from gateway.privacy import purge, receipts, user_erasure
from gateway.store.models import User
from gateway.store.privacy_models import Erasure

router = APIRouter(prefix="/v1/users", tags=["users"])


class UserCreate(RequestModel):
    """A new practitioner."""

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(
        None, max_length=40, description="E.164, or national in the account's country"
    )
    timezone: str | None = Field(None, description="IANA zone; defaults to the account's")
    locale: str | None = Field(None, max_length=35, description="BCP 47 tag; defaults to en")


class UserUpdate(RequestModel):
    """Fields to change; absent fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(None, max_length=40)
    timezone: str | None = None
    locale: str | None = Field(None, max_length=35)


class UserOut(ResponseModel):
    """A practitioner."""

    id: str
    name: str
    email: str | None
    phone: str | None
    timezone: str
    locale: str
    created_at: datetime
    updated_at: datetime


@router.post("", status_code=201, response_model=UserOut)
async def create_user(body: UserCreate, caller: CallerDep, idem: IdempotencyDep) -> JSONResponse:
    """Create a practitioner."""
    if (replay := await idem.replay(body)) is not None:
        return replay
    user = await people.create_user(
        caller.session, caller.account, body.model_dump(exclude_unset=True)
    )
    return await idem.respond(201, UserOut.model_validate(user))


@router.get("", response_model=ListOut[UserOut])
async def list_users(
    caller: CallerDep,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> ListOut[UserOut]:
    """The account's practitioners, oldest first."""
    page = await people.list_users(
        caller.session, caller.account, limit=page_limit(caller, limit), cursor=cursor
    )
    return ListOut[UserOut](
        data=[UserOut.model_validate(u) for u in page.items], next_cursor=page.next_cursor
    )


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: str, caller: CallerDep) -> UserOut:
    """One practitioner."""
    return UserOut.model_validate(await get_owned(caller.session, User, caller.account, user_id))


@router.patch("/{user_id}", response_model=UserOut)
async def update_user(user_id: str, body: UserUpdate, caller: CallerDep) -> UserOut:
    """Change a practitioner."""
    user = await people.update_user(
        caller.session, caller.account, user_id, body.model_dump(exclude_unset=True)
    )
    return UserOut.model_validate(user)


class UserErasureOut(ResponseModel):
    """A practitioner's erasure, one receipt for all of it: done at once when nothing is
    connected, else pending until every integration is purged. Counts by kind (appointments,
    notifications, feeds, integrations, events removed from calendars, ...), no personal data."""

    id: str
    user_id: str
    state: str = Field(description="pending (integrations being purged), then done")
    counts: dict[str, int]
    remote_left: str | None = Field(
        default=None, description="In words, what could not be removed from a calendar"
    )
    integration_ids: list[str] = Field(
        description="The integrations purged; each also has /v1/integrations/{id}/purge-receipt"
    )
    requested_at: datetime
    done_at: datetime | None


async def _erasure(caller: Caller, receipt: Erasure) -> UserErasureOut:
    return UserErasureOut(
        id=receipt.id,
        user_id=receipt.subject_id,
        state=receipt.state,
        counts=receipt.counts,
        remote_left=receipts.remote_left(receipt.counts),
        integration_ids=await user_erasure.integration_ids(caller.session, receipt),
        requested_at=receipt.requested_at,
        done_at=receipt.done_at,
    )


@router.delete("/{user_id}", status_code=202, response_model=UserErasureOut)
async def delete_user(
    user_id: str, caller: CallerDep, request: Request, background: BackgroundTasks
) -> UserErasureOut:
    """Erase a practitioner and every appointment with them, answering with one erasure
    receipt (readable later at /v1/users/{id}/erasure). Without connected calendars it is done
    at once; with some, each is disconnected and purged by the durable purge job (our events
    removed there) and the last one deletes the practitioner, the receipt summing them all."""
    receipt = await purge.accept_user_deletion(caller.session, caller.account, user_id)
    # After the commit: fold the WAL into the database file, where secure_delete zeroed it.
    background.add_task(receipts.checkpoint, get_store(request))
    return await _erasure(caller, receipt)


@router.get("/{user_id}/erasure", response_model=UserErasureOut)
async def get_erasure(user_id: str, caller: CallerDep) -> UserErasureOut:
    """The receipt of a practitioner's erasure."""
    return await _erasure(
        caller, await user_erasure.receipt_of(caller.session, caller.account, user_id)
    )
