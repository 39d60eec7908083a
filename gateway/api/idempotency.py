"""Idempotency-Key on every POST: a retried request gets the first answer and creates nothing.

The first successful answer is stored in the same transaction as what it created, so either
both exist or neither does. A retry with the same key and the same request replays it (with
``Idempotent-Replayed: true``); the same key with a different request is refused (422). On
PostgreSQL two requests racing with one key cannot both commit (unique index): the loser gets
409 and its retry replays the winner's answer.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.api.context import Caller, CallerDep
from gateway.errors import Conflict, ValidationFailed
from gateway.store.models import IdempotencyRecord
from gateway.store.types import utcnow

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255


class Idempotency:
    """One POST's view of its Idempotency-Key (a no-op when the header is absent)."""

    def __init__(self, request: Request, caller: Caller) -> None:
        self._caller = caller
        self._method = request.method
        self._path = request.url.path
        self._key = request.headers.get(HEADER)
        self._hash = ""
        if self._key is not None and not (
            0 < len(self._key) <= MAX_KEY_LENGTH and self._key.isprintable()
        ):
            raise ValidationFailed.one("Idempotency-Key", "must be 1 to 255 printable characters")

    async def replay(self, body: BaseModel | None = None) -> JSONResponse | None:
        """The stored answer when this request was already served, else None (go ahead)."""
        if self._key is None:
            return None
        payload = body.model_dump(mode="json", exclude_unset=True) if body is not None else None
        canonical = json.dumps([self._method, self._path, payload], sort_keys=True)
        self._hash = hashlib.sha256(canonical.encode()).hexdigest()
        session = self._caller.session
        record = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.account_id == self._caller.account.id,
                IdempotencyRecord.key == self._key,
            )
        )
        if record is None:
            return None
        if record.expires_at <= utcnow():
            await session.delete(record)
            await session.flush()
            return None
        if record.request_hash != self._hash:
            raise ValidationFailed.one(
                "Idempotency-Key", "already used for a different request; use a new key"
            )
        return JSONResponse(
            record.response_body,
            status_code=record.status_code,
            headers={"Idempotent-Replayed": "true"},
        )

    async def respond(
        self, status_code: int, result: BaseModel, *, remember: BaseModel | None = None
    ) -> JSONResponse:
        """Answer with `result`, remembering it (or `remember`) under the key, same transaction.

        `remember` is for answers that carry a secret shown once: the replay gets the answer
        without it, because a secret must never be stored in the clear.
        """
        body: Any = result.model_dump(mode="json")
        stored: Any = remember.model_dump(mode="json") if remember is not None else body
        if self._key is not None:
            now = utcnow()
            hours = self._caller.settings.api_idempotency_hours
            session = self._caller.session
            session.add(
                IdempotencyRecord(
                    account_id=self._caller.account.id,
                    key=self._key,
                    method=self._method,
                    path=self._path,
                    request_hash=self._hash,
                    status_code=status_code,
                    response_body=stored,
                    created_at=now,
                    expires_at=now + timedelta(hours=hours),
                )
            )
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict(
                    "another request with this Idempotency-Key is in progress; retry it"
                ) from None
        return JSONResponse(body, status_code=status_code)


def _idempotency(request: Request, caller: CallerDep) -> Idempotency:
    return Idempotency(request, caller)


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]
