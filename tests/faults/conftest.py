"""The fault matrix's common parts: fault scripts for the fault peer (tests/peers/faults.py),
the check that a failure is told in words, and certificates (one trusted, one not)."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.peers.faults import http_reply

# Every provider x each of these. `permanent` is the provider's "your credentials are refused"
# (never retried); the others are passing failures (retried with backoff).
FAULTS = [
    "refuse",
    "reset",
    "slow",
    "5xx",
    "429",
    "html",
    "truncated",
    "tls",
    "huge",
    "permanent",
]
RETRY_AFTER = 30  # seconds; longer than any inline wait, so the engine's backoff must honour it
TIMEOUT = 1.0  # each client's request timeout in these tests (a `slow` answer waits past it)
HUGE = 10 * 1024 * 1024
HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception|Timeout|Refused|Reset)\b")


def script(fault: str, body: str, permanent: bytes) -> tuple[str, bytes]:
    """The fault peer's switch for `fault`, for a provider speaking `body` ("json" or "xml");
    `permanent` is the provider's answer refusing the credentials."""
    kind = "application/json" if body == "json" else "application/xml; charset=utf-8"
    if fault in ("refuse", "reset", "slow", "tls"):
        return fault, b""
    if fault == "5xx":
        return "reply", http_reply(503, HTML, "text/html")
    if fault == "429":
        return "reply", http_reply(429, b"", "text/plain", {"Retry-After": str(RETRY_AFTER)})
    if fault == "html":
        return "reply", http_reply(200, HTML, "text/html")
    if fault == "truncated":
        cut = (
            b'{"kind": "calendar#events", "items": [{"id": "a'
            if body == "json"
            else (b'<?xml version="1.0"?>\n<multistatus xmlns="DAV:"><response><href>/a')
        )
        return "reply", http_reply(200 if body == "json" else 207, cut, kind)
    if fault == "huge":
        start = b'{"items": ["' if body == "json" else b'<?xml version="1.0"?><multistatus>'
        return "reply", http_reply(200 if body == "json" else 207, start + b"x" * HUGE, kind)
    assert fault == "permanent", fault
    return "reply", permanent


def assert_words(text: str | None) -> None:
    """A failure as a person reads it: present, short, one line, no class names, no markup."""
    assert text, "no words for the failure"
    assert len(text) < 300, text
    assert "\n" not in text and "Traceback" not in text, text
    assert not CLASS_NAME.search(text), f"a class name in the words: {text!r}"
    assert "<" not in text and "{" not in text, f"the answer's own body quoted: {text!r}"


@dataclass(frozen=True)
class Certificates:
    """A CA the clients trust (`ca_pem`) with its server context, and a stranger's context."""

    ca_pem: str
    good: ssl.SSLContext
    bad: ssl.SSLContext


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder: Path = tmp_path_factory.mktemp("certs")
    trusted, stranger = trustme.CA(), trustme.CA()
    good = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trusted.issue_cert("127.0.0.1").configure_cert(good)
    bad = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    stranger.issue_cert("127.0.0.1").configure_cert(bad)
    pem = folder / "ca.pem"
    trusted.cert_pem.write_to_path(str(pem))
    return Certificates(str(pem), good, bad)
