"""/v1/page-settings: how the pages people see behave for this account (the way back)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import Field

from gateway.api.context import CallerDep
from gateway.api.schemas import RequestModel, ResponseModel
from gateway.errors import ValidationFailed
from gateway.store.types import utcnow
from gateway.store.web_models import PageSettings

router = APIRouter(prefix="/v1/page-settings", tags=["pages"])


class PageSettingsBody(RequestModel):
    """The account's page settings."""

    return_url: str | None = Field(
        None,
        max_length=2000,
        description="Where the connection pages (after a calendar provider's consent screen) "
        "send the practitioner back to; null: the daemon's web.return_url",
    )


class PageSettingsOut(ResponseModel):
    """The account's page settings."""

    return_url: str | None


@router.get("", response_model=PageSettingsOut)
async def get_page_settings(caller: CallerDep) -> PageSettingsOut:
    """The account's page settings."""
    row = await caller.session.get(PageSettings, caller.account.id)
    return PageSettingsOut(return_url=row.return_url if row else None)


@router.put("", response_model=PageSettingsOut)
async def put_page_settings(body: PageSettingsBody, caller: CallerDep) -> PageSettingsOut:
    """Set the way back to the booking product (an http or https address)."""
    if body.return_url is not None:
        parts = urlsplit(body.return_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationFailed.one("return_url", "must be an http:// or https:// address")
    row = await caller.session.get(PageSettings, caller.account.id)
    if row is None:
        row = PageSettings(account_id=caller.account.id)
        caller.session.add(row)
    row.return_url = body.return_url
    row.updated_at = utcnow()
    await caller.session.flush()
    return PageSettingsOut(return_url=row.return_url)
