"""Keyset (cursor) pagination: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from gateway.errors import ValidationFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next one (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(values: Sequence[Any]) -> str:
    """Opaque cursor for the sort key `values` of the last item of a page."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """Inverse of encode_cursor; raises a 422 naming `cursor` when it was not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError
        return [
            datetime.fromisoformat(v) if k is datetime else k(v)
            for v, k in zip(raw, kinds, strict=True)
        ]
    except (ValueError, TypeError):
        raise ValidationFailed.one("cursor", "not a cursor returned by this API") from None


async def paginate(
    session: Any,
    query: Select[T],
    keys: Sequence[InstrumentedAttribute[Any]],
    *,
    limit: int,
    cursor: str | None,
) -> Page[T]:
    """Run `query` ordered by `keys` (unique together), starting after `cursor`."""
    if cursor:
        after = decode_cursor(cursor, [_python_type(k) for k in keys])
        query = query.where(_after(keys, after))
    rows = list((await session.scalars(query.order_by(*keys).limit(limit + 1))).all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([getattr(rows[-1], k.key) for k in keys]) if has_more else None
    return Page(rows, next_cursor)


def _python_type(column: InstrumentedAttribute[Any]) -> type:
    return datetime if column.key.endswith("_at") else str


def _after(keys: Sequence[InstrumentedAttribute[Any]], values: Sequence[Any]) -> Any:
    # (a, b) > (x, y)  ==  a > x OR (a = x AND b > y), written out for SQLite's sake.
    first, *rest = keys
    if not rest:
        return first > values[0]
    return or_(first > values[0], and_(first == values[0], _after(rest, values[1:])))
