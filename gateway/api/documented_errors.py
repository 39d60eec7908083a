"""Every status code an operation can answer, in /openapi.json, from one shared mapping.

FastAPI documents the success answer and its own 422 shape; calgate answers errors in one shape
of its own (`ErrorOut` below) with codes that follow from what an operation is: a /v1 operation
needs a key (401), an active account (402, 403) and validates its input (422); one with an id
in its path can miss (404), as can a report filtered by an id; one with a body can be too
large (413) or not JSON (415); a POST can reuse an Idempotency-Key (409); any of them answers 503
with Retry-After while the database does not answer. `EXTRA` lists the
codes particular to one operation. The schema fuzzer (tests/fuzz) checks that no answer falls
outside this list.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel


class FieldProblemOut(BaseModel):
    """What is wrong with one field of the request."""

    field: str
    problem: str


class ErrorDetail(BaseModel):
    """The error: a stable code, a sentence for people, and the fields at fault."""

    code: str
    message: str
    fields: list[FieldProblemOut]


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


DESCRIPTIONS = {
    401: "No API key, or an unknown or revoked one",
    402: "The account is suspended",
    403: "The account is being deleted, or the key's role does not allow this",
    404: "No such resource in this account (another account's id looks the same)",
    409: "Conflicts with the current state (see the message), or an Idempotency-Key in use",
    412: "If-Match names a version the resource is no longer at",
    413: "The body is larger than api.max_body_bytes",
    415: "The body is not JSON",
    422: "Malformed input: the fields list names each field and its problem",
    503: "The database does not answer: try again after Retry-After",
}
_NOT_READY = "Not ready: the database is unreachable or migrations are pending"

# Codes particular to one operation, beyond those that follow from its shape.
EXTRA: dict[tuple[str, str], tuple[int, ...]] = {
    ("patch", "/v1/appointments/{appointment_id}"): (409, 412),
    ("post", "/v1/appointments/{appointment_id}/cancel"): (412,),
    ("delete", "/v1/api-keys/{key_id}"): (409,),
    ("get", "/readyz"): (503,),
}


# /readyz answers its own shape, also when not ready.
_READINESS = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "database": {"type": "string", "description": "ok, down, or what is pending"},
        "detail": {"type": "string"},
    },
    "required": ["status", "database"],
}


def _codes(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    codes = set(EXTRA.get((method, path), ()))
    if path.startswith("/v1/"):
        codes |= {401, 402, 403, 422, 503}
        if "{" in path or path.startswith("/v1/reports/"):
            codes.add(404)
        if "requestBody" in operation:
            codes |= {413, 415}
        if method == "post":
            codes.add(409)
    return codes


def document(app: FastAPI) -> None:
    """Make `app.openapi()` list every error code of every operation with the `Error` schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(
            ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")["$defs"]
        )
        components["ErrorOut"] = {
            k: v
            for k, v in ErrorOut.model_json_schema(
                ref_template="#/components/schemas/{model}"
            ).items()
            if k != "$defs"
        }
        # FastAPI's own validation-error shape is never what calgate answers.
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for code in sorted(_codes(method, path, operation)):
                    readiness = path == "/readyz" and code == 503
                    body = _READINESS if readiness else {"$ref": "#/components/schemas/ErrorOut"}
                    responses[str(code)] = {
                        "description": _NOT_READY if readiness else DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": body}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
