"""Exports: the raw dump of the account (`GET /v1/export`) and one person's data (`GET
/v1/clients/{id}/export`, `GET /v1/users/{id}/export`), streamed as one JSON document each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from gateway.api.context import CallerDep, StoreDep
from gateway.domain.scoping import get_owned
from gateway.notify import optouts
from gateway.privacy.export import account_export
from gateway.privacy.person_export import person_export
from gateway.store.models import Client, User

router = APIRouter(tags=["exports"])
_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}, "description": "The export document."}
}


def _download(chunks: AsyncIterator[bytes], name: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="application/json",
        headers={
            "content-disposition": f'attachment; filename="{name}.json"',
            "cache-control": "no-store",
        },
    )


@router.get("/v1/export", response_class=StreamingResponse, responses=_DOC)
async def export_account(caller: CallerDep, store: StoreDep) -> StreamingResponse:
    """Every table holding the account's data, streamed (format `calgate.export`, version 1;
    see docs/data-map.md). Allowed while the account is suspended or being deleted."""
    return _download(account_export(store, caller.account.id), f"calgate-{caller.account.id}")


@router.get("/v1/clients/{client_id}/export", response_class=StreamingResponse, responses=_DOC)
async def export_client(client_id: str, caller: CallerDep, store: StoreDep) -> StreamingResponse:
    """One client's data: profile, appointments, notifications and delivery log, settings,
    SMS opt-out, feeds."""
    client = await get_owned(caller.session, Client, caller.account, client_id)
    digest = await optouts.phone_hash(caller.session, client.phone) if client.phone else None
    return _download(person_export(store, client, digest), f"calgate-{client.id}")


@router.get("/v1/users/{user_id}/export", response_class=StreamingResponse, responses=_DOC)
async def export_user(user_id: str, caller: CallerDep, store: StoreDep) -> StreamingResponse:
    """One practitioner's data: profile, appointments, notifications and delivery log, feeds,
    calendar integrations (never their credentials)."""
    user = await get_owned(caller.session, User, caller.account, user_id)
    return _download(person_export(store, user), f"calgate-{user.id}")
