"""A feed body as HTTP represents it: its response headers, content coding and validators.

Caching (RFC 9110 §13.2.2): If-None-Match wins over If-Modified-Since; an If-Modified-Since that
does not parse or lies in the future is ignored. Both representations (identity and gzip) carry
their own strong ETag and ``Vary: Accept-Encoding``; ``Cache-Control: private`` keeps shared
caches out. The headers are built once per rendered body and kept with it.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gateway.feeds.cache import Body

CACHE_CONTROL = b"private, no-cache"
_COMMON = [
    (b"cache-control", CACHE_CONTROL),
    (b"vary", b"accept-encoding"),
    (b"x-content-type-options", b"nosniff"),
    # The URL is the secret: never hand it on to another site.
    (b"referrer-policy", b"no-referrer"),
]


@functools.lru_cache(maxsize=512)  # runs on every fetch; clients send few distinct values
def accepts_gzip(raw: bytes) -> bool:
    """True when an Accept-Encoding value allows gzip (q=0 refuses it; ``*`` counts)."""
    star = False
    for part in raw.decode("latin-1").split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            star = quality > 0
    return star


def etag_matches(header: str, body: Body) -> bool:
    """If-None-Match with the weak comparison (RFC 9110 §13.1.2): either representation."""
    current = {body.etag, body.gzip_etag}
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag in current:
            return True
    return False


def not_modified_since(header: str, body: Body, now: datetime) -> bool:
    """True when a valid If-Modified-Since is at or after the body's Last-Modified."""
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since > now:  # a date in the future is invalid (RFC 9110 §13.1.3)
        return False
    return body.last_modified <= since


Headers = tuple[tuple[bytes, bytes], ...]


def response_headers(body: Body, gzipped: bool) -> tuple[Headers, Headers]:
    """The headers of a 304 and of a 200 for `body` in one representation, built once per body
    (they depend on nothing else) and kept with it."""
    cached = body.derived.get(gzipped)
    if cached is not None:
        return cached  # type: ignore[return-value]
    etag = body.gzip_etag if gzipped else body.etag
    validators = (
        *_COMMON,
        (b"etag", etag.encode()),
        (b"last-modified", body.last_modified_http.encode()),
    )
    length = len(body.gzipped if gzipped else body.identity)
    full = (
        *validators,
        (b"content-type", b"text/calendar; charset=utf-8"),
        (b"content-length", str(length).encode()),
        (b"content-disposition", b'inline; filename="calendar.ics"'),
        *([(b"content-encoding", b"gzip")] if gzipped else []),
    )
    body.derived[gzipped] = (validators, full)
    return validators, full
