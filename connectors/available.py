"""Loads every connector module, so each registers its provider name (connectors/base.py).

A new provider adds one import line here.
"""

from connectors import (
    caldav,  # noqa: F401
    google,  # noqa: F401
)
