"""/healthz (the process answers) and /readyz (the database answers and its schema is current)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gateway.api.context import get_store
from gateway.store.migrate import is_current

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers and migrations are current (503 otherwise)."""
    store = get_store(request)
    try:
        async with store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        current = await is_current(store)
    except Exception:  # any driver error means "not ready"
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "down",
                "detail": "the database does not answer; calgate reconnects when it is back",
            },
            status_code=503,
        )
    if not current:
        return JSONResponse(
            {"status": "unavailable", "database": "migrations pending: run `calgate migrate`"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok"})
