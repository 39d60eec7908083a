"""/v1/clients: the people appointments are with."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse
from pydantic import EmailStr, Field

from gateway.api.context import CallerDep, get_store, page_limit
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import ListOut, RequestModel, ResponseModel
from gateway.domain import people
from gateway.domain.scoping import get_owned
from gateway.privacy import erasure as privacy_erasure
from gateway.privacy import receipts
from gateway.store.models import Client
from gateway.store.privacy_models import Erasure

router = APIRouter(prefix="/v1/clients", tags=["clients"])


class ClientCreate(RequestModel):
    """A new client."""

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(
        None, max_length=40, description="E.164, or national in the account's country"
    )
    timezone: str | None = Field(None, description="IANA zone; null = the practitioner's zone")
    locale: str | None = Field(None, max_length=35, description="BCP 47 tag; defaults to en")
    notify_email: bool = True
    notify_sms: bool = False
    sms_consent: bool = Field(False, description="The client agreed to receive SMS")


class ClientUpdate(RequestModel):
    """Fields to change; absent fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(None, max_length=40)
    timezone: str | None = None
    locale: str | None = Field(None, max_length=35)
    notify_email: bool | None = None
    notify_sms: bool | None = None
    sms_consent: bool | None = None


class ClientOut(ResponseModel):
    """A client."""

    id: str
    name: str
    email: str | None
    phone: str | None
    timezone: str | None
    locale: str
    notify_email: bool
    notify_sms: bool
    sms_consent: bool
    sms_consent_at: datetime | None
    created_at: datetime
    updated_at: datetime


@router.post("", status_code=201, response_model=ClientOut)
async def create_client(
    body: ClientCreate, caller: CallerDep, idem: IdempotencyDep
) -> JSONResponse:
    """Create a client."""
    if (replay := await idem.replay(body)) is not None:
        return replay
    client = await people.create_client(
        caller.session, caller.account, body.model_dump(exclude_unset=True)
    )
    return await idem.respond(201, ClientOut.model_validate(client))


@router.get("", response_model=ListOut[ClientOut])
async def list_clients(
    caller: CallerDep,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> ListOut[ClientOut]:
    """The account's clients, oldest first."""
    page = await people.list_clients(
        caller.session, caller.account, limit=page_limit(caller, limit), cursor=cursor
    )
    return ListOut[ClientOut](
        data=[ClientOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/{client_id}", response_model=ClientOut)
async def get_client(client_id: str, caller: CallerDep) -> ClientOut:
    """One client."""
    return ClientOut.model_validate(
        await get_owned(caller.session, Client, caller.account, client_id)
    )


@router.patch("/{client_id}", response_model=ClientOut)
async def update_client(client_id: str, body: ClientUpdate, caller: CallerDep) -> ClientOut:
    """Change a client."""
    client = await people.update_client(
        caller.session, caller.account, client_id, body.model_dump(exclude_unset=True)
    )
    return ClientOut.model_validate(client)


class ErasureOut(ResponseModel):
    """A client's erasure: done here at once, pending while our copies of their appointments
    are deleted from external calendars. Counts by kind, no personal data."""

    id: str
    client_id: str
    state: str = Field(description="pending (external calendars), then done")
    counts: dict[str, int]
    remote_left: str | None = Field(
        default=None, description="In words, copies that could not be removed from a calendar"
    )
    requested_at: datetime
    done_at: datetime | None


def _erasure(row: Erasure) -> ErasureOut:
    return ErasureOut(
        id=row.id,
        client_id=row.subject_id,
        state=row.state,
        counts=row.counts,
        remote_left=receipts.remote_left(row.counts),
        requested_at=row.requested_at,
        done_at=row.done_at,
    )


@router.delete("/{client_id}", status_code=202, response_model=ErasureOut)
async def delete_client(
    client_id: str, caller: CallerDep, request: Request, background: BackgroundTasks
) -> ErasureOut:
    """Erase a client: they, their appointments, the notifications about those with their
    delivery logs, feeds scoped to them and idempotency records naming them go at once; a
    durable job then deletes our copies of their appointments from every connected calendar.
    Answers with the erasure receipt, readable later at /v1/clients/{id}/erasure."""
    erasure = await privacy_erasure.accept_client_erasure(caller.session, caller.account, client_id)
    # After the commit: fold the WAL into the database file, where secure_delete zeroed it.
    background.add_task(receipts.checkpoint, get_store(request))
    return _erasure(erasure)


@router.get("/{client_id}/erasure", response_model=ErasureOut)
async def get_erasure(client_id: str, caller: CallerDep) -> ErasureOut:
    """The receipt of a client's erasure."""
    return _erasure(await privacy_erasure.erasure_of(caller.session, caller.account, client_id))
