"""Logging: JSON lines when not on a terminal, a request id on every line, no personal data.

Code logs ids and counts, never names, emails, phones or notes; as a second line of defence the
formatter redacts any extra field whose key is sensitive (gateway/privacy/redact.py).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from gateway.privacy.redact import redact

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed through `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of msg
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    skip = _STANDARD | {"request_id"}
    return redact({k: v for k, v in vars(record).items() if k not in skip})


def _stamp_request_id() -> None:
    """Record the request id when a record is made (a handler may format it later)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "calgate", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    factory.calgate = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (rid := getattr(record, "request_id", None)) is not None:
            entry["request_id"] = rid
        entry.update(_extras(record))
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        parts = [
            datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S"),
            record.levelname.ljust(7),
            record.name,
            f"[{rid}]" if rid else "",
            record.getMessage(),
            extras,
        ]
        return " ".join(p for p in parts if p)


QUIET_LIBRARIES = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy.engine",
    "httpx",
    "httpcore",
    "urllib3",
    "caldav",
    "googleapiclient",
    "msal",
    "twilio",
    "aiosmtplib",
    "mail.log",
)


def configure(level: str, fmt: str) -> None:
    """Route calgate's, uvicorn's and APScheduler's logs through one handler on stderr."""
    _stamp_request_id()
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "apscheduler"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access log prints raw paths (feed tokens live in paths): ours logs route templates.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
    # These log SQL parameters or full URLs at DEBUG/INFO: personal data and tokens. Never below
    # WARNING, whatever the level asked for.
    for leaky in QUIET_LIBRARIES:
        logging.getLogger(leaky).setLevel(logging.WARNING)
