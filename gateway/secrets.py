"""Encryption at rest of provider secrets (CalDAV passwords, OAuth refresh tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with the key from the setting
`secrets_key` (env CALGATE_SECRETS_KEY), else from a key file under `data_dir`, generated on
first use with mode 0600. Losing the key makes stored secrets unreadable: integrations then ask
to reconnect; nothing else is lost.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from gateway.config import Settings
from gateway.errors import ConfigError, ExternalError

_cache: dict[str, Fernet] = {}


class SecretUnreadable(ExternalError):
    """A stored secret cannot be decrypted with the current key (key changed or lost): only
    connecting again (a new password or consent) helps."""

    code = "secret_unreadable"
    action = "reconnect"


def _key_from_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two processes starting together cannot each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def _fernet(settings: Settings) -> Fernet:
    configured = settings.secrets_key.get_secret_value()
    path = Path(settings.secrets_key_file)
    if not path.is_absolute():
        path = settings.data_dir / path
    cache_key = configured or str(path)
    if cache_key not in _cache:
        raw = configured.encode() if configured else _key_from_file(path)
        try:
            _cache[cache_key] = Fernet(raw)
        except ValueError:
            source = "secrets_key" if configured else str(path)
            raise ConfigError(
                f"bad setting secrets_key (from {source}): must be 32 url-safe base64 bytes"
            ) from None
    return _cache[cache_key]


def encrypt(settings: Settings, plaintext: str) -> str:
    """`plaintext` encrypted and authenticated, as ASCII text for the database."""
    return _fernet(settings).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    """The plaintext of `encrypt`'s output. Raises SecretUnreadable with a different key."""
    try:
        return _fernet(settings).decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable("the stored secret cannot be read with the current key") from None
