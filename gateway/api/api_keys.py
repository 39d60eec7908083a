"""/v1/api-keys: named keys, shown once, revocable."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from gateway.api.context import CallerDep
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import ListOut, RequestModel, ResponseModel
from gateway.domain import accounts, key_activity

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class KeyCreate(RequestModel):
    """A new key."""

    name: str = Field(min_length=1, max_length=200)


class KeyOut(ResponseModel):
    """A key as listed: its prefix only, never the secret."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    """A key just created: `secret` is shown this once and cannot be read again."""

    secret: str


@router.post("", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, caller: CallerDep, idem: IdempotencyDep) -> JSONResponse:
    """Create a key. Its secret is in this answer only: a replay of the same Idempotency-Key
    returns the key without it (secrets are never stored in the clear)."""
    if (replay := await idem.replay(body)) is not None:
        return replay
    issued = await accounts.issue_key(caller.session, caller.account, body.name)
    listed = KeyOut.model_validate(issued.key)
    out = KeyCreated(**listed.model_dump(), secret=issued.secret)
    return await idem.respond(201, out, remember=listed)


@router.get("", response_model=ListOut[KeyOut])
async def list_keys(caller: CallerDep) -> ListOut[KeyOut]:
    """Every key of the account, revoked ones included."""
    keys = await accounts.list_keys(caller.session, caller.account)
    return ListOut[KeyOut](data=[KeyOut.model_validate(k) for k in keys], next_cursor=None)


@router.delete("/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, caller: CallerDep) -> KeyOut:
    """Revoke a key; requests with it answer 401 from now on."""
    return KeyOut.model_validate(await accounts.revoke_key(caller.session, caller.account, key_id))


class ActivityOut(ResponseModel):
    """Use of the key on one day (UTC) from one address with one kind of client software."""

    day: str
    agent: str = Field(description="the client software's family, never the raw user-agent")
    address: str | None = Field(description="cleared after usage.ip_retention_days")
    first_at: datetime
    last_at: datetime


@router.get("/{key_id}/activity", response_model=ListOut[ActivityOut])
async def key_activity_log(key_id: str, caller: CallerDep) -> ListOut[ActivityOut]:
    """Sign-in activity of the key, newest day first (revoked keys included)."""
    rows = await key_activity.activity(caller.session, caller.account, key_id)
    return ListOut[ActivityOut](
        data=[ActivityOut.model_validate(r) for r in rows], next_cursor=None
    )
