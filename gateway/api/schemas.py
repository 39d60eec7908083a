"""Pieces every resource's schemas share."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

# A length limit on every free-text field keeps one request from filling the database.
Name = Field(min_length=1, max_length=200)


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    """A response body built from a store row."""

    model_config = ConfigDict(from_attributes=True)


class ListOut(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next page."""

    data: list[T]
    next_cursor: str | None
