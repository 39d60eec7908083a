"""The ASGI application class: FastAPI with an entry that layers can wrap from the outside."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class App(FastAPI):
    """FastAPI whose `entry` is what the server calls.

    A layer that must answer some requests before FastAPI's own dispatch, its telemetry check
    and the whole middleware stack wraps `entry` (the feed fetches, gateway/feeds/http.py: the
    hot path, where each of those awaits costs a measurable share of serving cached bytes).
    Whatever middleware is added later still sits inside it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry: ASGIApp = super().__call__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.entry(scope, receive, send)
