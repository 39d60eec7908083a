"""/v1/account: the calling account itself (name, default zone, country, state, deletion)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import Field

from gateway.api.context import CallerDep
from gateway.api.schemas import RequestModel, ResponseModel
from gateway.domain import account_states, accounts

router = APIRouter(prefix="/v1/account", tags=["account"])


class AccountOut(ResponseModel):
    """The account: its zone is the default of new practitioners, its country that of phones."""

    id: str
    name: str
    timezone: str
    country: str
    created_at: datetime
    status: str = Field(description="active, suspended (payment failed) or deleting")
    status_reason: str | None
    deletion_due_at: datetime | None = Field(description="when a scheduled deletion runs")


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


@router.delete("", status_code=202, response_model=AccountOut)
async def delete_account(caller: CallerDep) -> AccountOut:
    """Schedule the account's deletion after `accounts.deletion_grace_days` (0 = at the next
    tick). Until then the API answers 403 except for GET /v1/account and GET /v1/export; at the
    end every integration is disconnected (our events removed from the calendars), every key
    and feed revoked and every row deleted, leaving a receipt of counts."""
    await account_states.schedule_deletion(
        caller.session,
        caller.account,
        reason="deletion requested through the API",
        grace_days=caller.settings.accounts_deletion_grace_days,
    )
    return AccountOut.model_validate(caller.account)
