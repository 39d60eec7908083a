"""Pieces every resource's schemas share."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from gateway.domain.text import (
    MULTI_LINE_CONTROLS,
    MULTI_LINE_PROBLEM,
    ONE_LINE_CONTROLS,
    ONE_LINE_PROBLEM,
)

T = TypeVar("T")

# A length limit on every free-text field keeps one request from filling the database.
Name = Field(min_length=1, max_length=200)


def _has_control(value: Any, pattern: re.Pattern[str]) -> bool:
    if isinstance(value, str):
        return pattern.search(value) is not None
    if isinstance(value, dict):
        return any(_has_control(k, pattern) or _has_control(v, pattern) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_control(v, pattern) for v in value)
    return False


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped; text without control
    characters (fields named in `multiline` may hold line breaks and tabs)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    multiline: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.multiline:
            if _has_control(value, MULTI_LINE_CONTROLS):
                raise ValueError(MULTI_LINE_PROBLEM)
        elif _has_control(value, ONE_LINE_CONTROLS):
            raise ValueError(ONE_LINE_PROBLEM)
        return value


class ResponseModel(BaseModel):
    """A response body built from a store row."""

    model_config = ConfigDict(from_attributes=True)


class ListOut(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next page."""

    data: list[T]
    next_cursor: str | None


# Instants the API accepts: RFC 3339 text with an offset, inside a documented range. The range
# keeps every conversion (to UTC, to the far-off zones of the world, plus a day of reminders or
# expansion) inside what dates can hold, and no appointment is booked outside it.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):  # built in Python, not read from a request
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time such as 2027-03-03T09:00:00Z")
    if value[-1] in "Zz" or value[-6] in "+-":
        try:
            parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
            instant = parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValueError(
                f"is not a valid date-time between {EARLIEST_INSTANT:%Y-%m-%d} and "
                f"{LATEST_INSTANT:%Y-%m-%d}"
            ) from None
        if not EARLIEST_INSTANT <= instant < LATEST_INSTANT:
            raise ValueError(
                f"must be between {EARLIEST_INSTANT:%Y-%m-%dT%H:%M:%SZ} and "
                f"{LATEST_INSTANT:%Y-%m-%dT%H:%M:%SZ}"
            )
        return parsed
    return value  # no offset: AwareDatetime refuses it with the usual words


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset (or Z), from 1900-01-01T00:00:00Z to "
            "before 2200-01-01T00:00:00Z",
        }
    ),
]
