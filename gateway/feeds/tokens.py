"""Feed tokens: 256 random bits in the URL, only their SHA-256 in the store.

The lookup is one indexed equality on the hash, the same as API keys
(`gateway.domain.accounts.hash_secret`): the time it takes depends on the hash, which an
attacker cannot steer towards a real token, so no timing difference leaks the token.
"""

from __future__ import annotations

import re
import secrets

from gateway.domain.accounts import hash_secret

TOKEN_BYTES = 32  # 256 bits, well above the 128 the threat model asks for
TOKEN_LENGTH = 43  # len(secrets.token_urlsafe(32)): base64url without padding
PREFIX_LENGTH = 6
_WELL_FORMED = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")
# Hashed instead of a malformed token, so that a miss of any shape costs the same lookup.
_DECOY = "0" * TOKEN_LENGTH


def new_token() -> str:
    """A fresh token for a feed URL."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_well_formed(token: str) -> bool:
    """True when `token` has the length and alphabet of the tokens we issue."""
    return _WELL_FORMED.fullmatch(token) is not None


def lookup_hash(token: str) -> str:
    """The hash to look `token` up by; a malformed token gets a decoy that matches nothing."""
    return hash_secret(token if is_well_formed(token) else _DECOY)


def prefix(token: str) -> str:
    """The few characters shown to tell links apart (36 of 256 bits: no help to a guesser)."""
    return token[:PREFIX_LENGTH]
