"""Everything of gateway/web on an app: assets, docs, feed page, client pages."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from gateway.web import client_page, docs, pages, short_links


def install(app: FastAPI) -> None:
    """Mount the pages' assets and routes (the feed page goes in with the feeds endpoint)."""
    app.mount(pages.ASSETS_PATH, StaticFiles(directory=pages.WEB_DIR / "assets"), name="web-assets")
    docs.install(app)
    app.include_router(client_page.router)
    app.include_router(short_links.router)
