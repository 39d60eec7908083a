"""The feed subscription page ``GET /feeds/{token}``: one-tap ways to add the feed to an app.

The token is the feed's own secret (the ``.ics`` URL without its extension): the feeds
endpoint looks it up as for a fetch, so an unknown token gets the very same 404 and counts as
a miss. The page shows the calendar's name and nothing else about anyone.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from sqlalchemy import select
from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope, Send

from gateway.config import Settings
from gateway.feeds.service import feed_urls
from gateway.store.db import Store
from gateway.store.feed_models import Feed
from gateway.web import pages
from gateway.web.qr import qr_svg

GOOGLE_ADD = "https://calendar.google.com/calendar/render?cid="
OUTLOOK_COM_ADD = "https://outlook.live.com/calendar/0/addfromweb?"
OFFICE_ADD = "https://outlook.office.com/calendar/0/addfromweb?"


def subscribe_links(url: str, webcal: str, name: str) -> dict[str, str]:
    """Each app's way in: webcal for the desktop apps, the web apps' "add by URL" links."""
    web = urlencode({"url": url, "name": name})
    return {
        "webcal_url": webcal,
        # Google reads `cid` as a webcal:// (or https) address to subscribe to.
        "google_url": GOOGLE_ADD + quote(webcal, safe=""),
        "outlook_com_url": OUTLOOK_COM_ADD + web,
        "office_url": OFFICE_ADD + web,
    }


class FeedPage:
    """The page, handed a token the feeds endpoint has already found."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, token: str, feed_id: str
    ) -> None:
        async with self.store.engine.connect() as conn:
            name = (await conn.execute(select(Feed.name).where(Feed.id == feed_id))).scalar_one()
        lang = pages.choose_language(
            Headers(scope=scope).get("accept-language"),
            QueryParams(scope.get("query_string", b"")).get("lang"),
        )
        url, webcal = feed_urls(self.settings.public_url, token)
        links = subscribe_links(url, webcal, name)
        response = pages.page(
            "feed.html.j2",
            lang,
            name=name,
            url=url,
            qr_svg=qr_svg(url, pages.words(lang)["feed_qr_title"]),
            webcal_url=links["webcal_url"],
            google_url=links["google_url"],
            outlook_com_url=links["outlook_com_url"],
            office_url=links["office_url"],
        )
        await response(scope, receive, send)
