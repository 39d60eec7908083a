"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from ulid import ULID


class UTCDateTime(TypeDecorator[datetime]):
    """An instant, always stored and returned as UTC.

    PostgreSQL keeps it as ``timestamptz``. SQLite has no such type, so it is stored as naive UTC
    text, which sorts and compares correctly because every row uses the same zone. A naive value
    is refused on the way in: a wall-clock time without a zone is not an instant.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given where an instant is required")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def new_id(prefix: str) -> str:
    """A public id: a type prefix and a ULID, so ids sort by creation time (cursor pagination)."""
    return f"{prefix}_{str(ULID()).lower()}"


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)
