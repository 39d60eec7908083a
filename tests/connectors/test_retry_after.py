"""Retry-After read the same way for every provider (RFC 9110 §10.2.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.errors import retry_after_seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (3, 3.0), ("-5", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_delta_seconds_and_nonsense(value: object, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


@pytest.mark.parametrize("naive", [False, True])  # "GMT", or "-0000" (no zone: UTC)
def test_an_http_date_is_the_time_until_it(naive: bool) -> None:
    def header(moment: datetime) -> str:
        return (
            format_datetime(moment.replace(tzinfo=None))
            if naive
            else format_datetime(moment, usegmt=True)
        )

    later = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=90)
    assert header(later).endswith("-0000" if naive else "GMT")
    seconds = retry_after_seconds(header(later))
    assert seconds is not None and 80 <= seconds <= 90
    assert retry_after_seconds(header(later - timedelta(hours=1))) == 0.0
