"""Turning errors into JSON answers: one shape for every 4xx and 5xx.

``{"error": {"code": "...", "message": "...", "fields": [{"field": "...", "problem": "..."}]}}``
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.errors import CalgateError, ExternalError, FieldProblem, describe

log = logging.getLogger("calgate.api")


def error_body(
    code: str, message: str, problems: list[FieldProblem] | None = None
) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {
        "error": {
            "code": code,
            "message": message,
            "fields": [{"field": p.field, "problem": p.problem} for p in problems or []],
        }
    }


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _problem(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown field"
    if err.get("type") == "timezone_aware":
        return "needs a UTC offset or Z (a time without one is ambiguous)"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [FieldProblem(_field_name(tuple(e["loc"])), _problem(e)) for e in exc.errors()]
    message = "; ".join(f"{p.field}: {p.problem}" for p in problems)
    return JSONResponse(error_body("validation_failed", message, problems), status_code=422)


# What an external failure (a provider, a channel, a secret) means for the caller, as HTTP.
EXTERNAL_STATUS = {"retry": 503, "reconnect": 502, "conflict": 409, "failed": 502}


def _calgate(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CalgateError)
    if isinstance(exc, ExternalError):
        trouble = describe(exc)
        return JSONResponse(
            error_body(trouble.code, trouble.words), status_code=EXTERNAL_STATUS[trouble.action]
        )
    if exc.status_code >= 500:
        log.error("internal error: %s", type(exc).__name__)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.problems), status_code=exc.status_code
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path. Starlette's own 405 names only
    the first matching route's methods, and GET and POST of a collection are two routes."""
    scope = {k: v for k, v in request.scope.items() if k not in ("endpoint", "path_params")}
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (methods := allowed_methods(request)):
        headers["Allow"] = ", ".join(methods)
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
    )


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The type only: exception text may quote personal data from a row.
    log.error("unhandled %s", type(exc).__name__, exc_info=False)
    return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


def _database_down(exc: BaseException) -> bool:
    """True for the failures of a database that does not answer (stopped, restarting, network
    gone): the driver's connection errors, as SQLAlchemy wraps them or as they come raw from
    the driver's connect."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and _down_state(exc):
        return True
    if isinstance(exc, OSError):
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_globals.get("__name__", "").startswith(("sqlalchemy", "asyncpg")):
                return True
            tb = tb.tb_next
    return False


# SQLSTATEs of a server that is going or not yet there: class 08 (connection exception),
# 57P01-57P03 (admin shutdown, crash shutdown, "the database system is starting up"). The
# driver's own class for these varies (SQLAlchemy wraps asyncpg's as a plain DBAPIError).
_DOWN_CLASS = "08"
_DOWN_STATES = frozenset({"57P01", "57P02", "57P03"})


def _down_state(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(6):  # the wrapper, its driver error and what that wraps
        if seen is None:
            return False
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str) and (code.startswith(_DOWN_CLASS) or code in _DOWN_STATES):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def _connection(request: Request, exc: Exception) -> JSONResponse:
    """The database does not answer: 503 and a Retry-After, not a 500 (nothing was done; the
    daemon reconnects by itself). Other OS errors are unexpected."""
    if not _database_down(exc):
        return _unexpected(request, exc)
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        error_body("database_unavailable", "the database does not answer: try again shortly"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(CalgateError, _calgate)
    app.add_exception_handler(StarletteHTTPException, _http)
    for kind in (sa_exc.DBAPIError, sa_exc.InterfaceError, OSError):
        app.add_exception_handler(kind, _connection)
    app.add_exception_handler(Exception, _unexpected)
