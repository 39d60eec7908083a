"""What free text may hold: one-line fields no control character, multi-line fields line breaks
and tabs only. A line break in a name breaks the one-line places it ends up in (calendar names,
email headers, SMS); a NUL is refused by PostgreSQL and cut short by C libraries."""

from __future__ import annotations

import re

from gateway.errors import ValidationFailed

ONE_LINE_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MULTI_LINE_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
ONE_LINE_PROBLEM = "must be one line without control characters"
MULTI_LINE_PROBLEM = "must not contain control characters other than line breaks and tabs"


def require_one_line(field: str, value: str) -> str:
    """`value`, or ValidationFailed naming `field` when it holds a control character."""
    if ONE_LINE_CONTROLS.search(value):
        raise ValidationFailed.one(field, ONE_LINE_PROBLEM)
    return value
