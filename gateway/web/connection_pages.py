"""The landing pages after a calendar provider's consent screen: one layout, five outcomes.

`connected`, `declined` (the person said no), `expired` (the link was invalid, stale or used),
`already_connected` (a used link whose connection is live: a reload) and `error` (in words).
Each says which calendar was connected and where appointments will be written, and offers
the way back to the booking product: the account's return URL (`page_settings`), else the
daemon's `web_return_url`. Provider-neutral: the caller names the provider.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from starlette.responses import HTMLResponse

from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.web_models import PageSettings
from gateway.web import pages

OUTCOMES = ("connected", "declined", "expired", "already_connected", "error")
_STATUS = {
    "connected": 200,
    "already_connected": 200,
    "declined": 400,
    "expired": 400,
    "error": 400,
}


@dataclass(frozen=True)
class Landing:
    """What happened, for the page."""

    outcome: str
    provider: str  # the provider's name as people know it, e.g. "Google Calendar"
    calendar: str | None = None  # where appointments will be written
    detail: str | None = None  # an error in words
    account_id: str | None = None


async def return_url(store: Store, settings: Settings, account_id: str | None) -> str | None:
    """The account's way back to the booking product, else the daemon's, else None."""
    if account_id is not None:
        async with store.engine.connect() as conn:
            own = (
                await conn.execute(
                    select(PageSettings.return_url).where(PageSettings.account_id == account_id)
                )
            ).scalar_one_or_none()
        if own:
            return str(own)
    return settings.web_return_url or None


def render_landing(landing: Landing, lang: str, back: str | None) -> HTMLResponse:
    """The landing page of `landing` in `lang`, with the way `back` when there is one."""
    if landing.outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {landing.outcome!r}")
    response = pages.page(
        "connection.html.j2",
        lang,
        status=_STATUS[landing.outcome],
        outcome=landing.outcome,
        provider=landing.provider,
        calendar=landing.calendar,
        detail=landing.detail,
        back=back,
    )
    return response


async def landing_page(
    store: Store, settings: Settings, landing: Landing, accept_language: str | None
) -> HTMLResponse:
    """`render_landing` with the account's return URL and the browser's language."""
    back = await return_url(store, settings, landing.account_id)
    return render_landing(landing, pages.choose_language(accept_language), back)
