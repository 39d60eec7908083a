"""ASGI middleware around every request: request id, body size limit, access log, usage record."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import error_body
from gateway.logs import request_id
from gateway.store.db import Store
from gateway.store.models import UsageRecord

log = logging.getLogger("calgate.http")
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Routes whose body is a file streamed to the handler (not JSON, not held in memory here).
STREAMED_UPLOADS = frozenset({"/v1/imports"})


def _route_template(scope: Scope) -> str:
    # The matched route's template (/v1/users/{user_id}), never the raw path: raw paths carry
    # ids of people and, for feeds, secret tokens.
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _json_required(scope: Scope, headers: dict[str, str]) -> bool:
    """True for an API request with a body that is not declared as JSON."""
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return (
        str(scope["path"]).startswith("/v1/")
        and scope["method"] in ("POST", "PUT", "PATCH")
        and has_body
        and media_type != "application/json"
    )


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    """Answer with an error without calling the app (used before the body is parsed)."""
    payload = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestMiddleware:
    """Wraps the app: see the module docstring. Usage is written after the answer is sent."""

    def __init__(self, app: ASGIApp, *, store: Store | None, max_body_bytes: int) -> None:
        self.app = app
        self.store = store
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        rid = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            if scope["path"] in STREAMED_UPLOADS:
                # Uploads go to their handler as they arrive; it bounds their size itself.
                await self.app(scope, receive, send_with_id)
                return
            body_receive = await self._bounded_body(headers, receive)
            if body_receive is None:
                await _reject(
                    send_with_id,
                    413,
                    "payload_too_large",
                    f"request body over {self.max_body_bytes} bytes",
                )
            elif _json_required(scope, headers):
                await _reject(
                    send_with_id,
                    415,
                    "unsupported_media_type",
                    "send the body as JSON with 'Content-Type: application/json'",
                )
            else:
                await self.app(scope, body_receive, send_with_id)
        finally:
            wall_ms = (time.perf_counter() - wall0) * 1000
            # Thread CPU time of the loop thread while this request was in flight: exact for a
            # lone request, an upper bound when requests overlap.
            cpu_ms = (time.thread_time() - cpu0) * 1000
            route = _route_template(scope)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status["code"],
                    "ms": round(wall_ms, 2),
                },
            )
            await self._record_usage(scope, route, status["code"], wall_ms, cpu_ms)
            request_id.reset(token)

    async def _bounded_body(self, headers: dict[str, str], receive: Receive) -> Receive | None:
        """A receive that replays the body read up to the limit; None when it is too large."""
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return None
        if length is None and "transfer-encoding" not in headers:
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return receive  # client went away; let the app see the disconnect
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _record_usage(
        self, scope: Scope, route: str, status: int, wall_ms: float, cpu_ms: float
    ) -> None:
        state: dict[str, Any] = scope.get("state", {})
        account_id = state.get("account_id")
        if self.store is None or account_id is None:
            return
        try:
            async with self.store.transaction() as session:
                session.add(
                    UsageRecord(
                        account_id=account_id,
                        api_key_id=state.get("api_key_id"),
                        method=scope["method"],
                        route=route,
                        status_code=status,
                        wall_ms=wall_ms,
                        cpu_ms=cpu_ms,
                    )
                )
        except Exception as exc:  # a lost usage row must never fail or stall the API
            log.warning("usage record not written: %s", type(exc).__name__)
