"""The ASGI application factory: API routers, error handlers, middleware and ticks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import features
from gateway.api import (
    account,
    api_keys,
    appointments,
    clients,
    documented_errors,
    errors,
    exports,
    feeds,
    health,
    imports,
    integrations,
    metrics,
    notifications,
    page_settings,
    providers,
    reports,
    twilio_webhooks,
    usage,
    users,
    webhook_endpoints,
)
from gateway.api.middleware import RequestMiddleware
from gateway.asgi import App
from gateway.config import Settings
from gateway.feeds import http as feeds_http
from gateway.notify.channels import registry as channel_registry
from gateway.scheduler import Ticks
from gateway.store.db import Store
from gateway.sync import providers as provider_registry
from gateway.web import install as web_install
from gateway.web.feed_page import FeedPage


def create_app(
    settings: Settings, store: Store | None = None, *, run_ticks: bool = True
) -> FastAPI:
    """Build the app. Without `store`, one is opened from the settings and closed on shutdown.

    Raises ConfigError when a feature refuses its settings.
    """
    channel_registry.check(settings)  # the notify feature's own settings and channels
    owns_store = store is None
    the_store = (
        store
        if store is not None
        else Store.from_url(settings.database_url, echo=settings.database_echo, settings=settings)
    )

    if the_store.settings is None:
        the_store.settings = settings
    features.install(the_store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ticks = Ticks(the_store, settings) if run_ticks else None
        if ticks is not None:
            await ticks.start()
        try:
            yield
        finally:
            if ticks is not None:
                await ticks.stop()
            if owns_store:
                await the_store.close()

    app = App(
        title="calgate",
        version="0.1.0",
        summary="Calendar feeds, two-way sync and notifications for booking products.",
        lifespan=lifespan,
        docs_url=None,  # served offline by gateway/web/docs.py
        redoc_url=None,
        # Metrics are Prometheus (gateway/metrics.py); FastAPI's own OpenTelemetry check runs
        # on every request, feed fetches included, and costs more than the fetch's lookup.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.store = the_store
    errors.install(app)
    documented_errors.document(app)
    for module in (health, account, users, clients, appointments, api_keys, usage, feeds):
        app.include_router(module.router)
    app.include_router(notifications.router)
    app.include_router(twilio_webhooks.router)
    app.include_router(integrations.router)
    app.include_router(integrations.busy_router)
    app.include_router(providers.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(page_settings.router)
    web_install.install(app)
    app.include_router(metrics.router)
    app.include_router(exports.router)
    app.include_router(reports.router)
    app.include_router(imports.router)
    provider_registry.install(the_store, settings)  # the connectors named in the settings
    app.add_middleware(
        RequestMiddleware, store=the_store, max_body_bytes=settings.api_max_body_bytes
    )
    # Feeds (and their subscription pages) go first, ahead of FastAPI and every middleware.
    feeds_http.install(app, the_store, settings, page=FeedPage(the_store, settings))
    return app
