"""/v1/account: the calling account itself (name, default zone, country)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import Field

from gateway.api.context import CallerDep
from gateway.api.schemas import RequestModel, ResponseModel
from gateway.domain import accounts

router = APIRouter(prefix="/v1/account", tags=["account"])


class AccountOut(ResponseModel):
    """The account: its zone is the default of new practitioners, its country that of phones."""

    id: str
    name: str
    timezone: str
    country: str
    created_at: datetime


class AccountUpdate(RequestModel):
    """Fields to change; absent fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = None
    country: str | None = Field(None, min_length=2, max_length=2)


@router.get("", response_model=AccountOut)
async def get_account(caller: CallerDep) -> AccountOut:
    """The calling account."""
    return AccountOut.model_validate(caller.account)


@router.patch("", response_model=AccountOut)
async def update_account(body: AccountUpdate, caller: CallerDep) -> AccountOut:
    """Change the account's name, default zone or country."""
    account = await accounts.update_account(
        caller.session, caller.account, body.model_dump(exclude_unset=True)
    )
    return AccountOut.model_validate(account)
