"""Encryption at rest of provider secrets (CalDAV passwords, OAuth refresh tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with the key from the setting
`secrets_key` (env CALGATE_SECRETS_KEY), else from a key file under `data_dir`, generated on
first use with mode 0600. Losing the key makes stored secrets unreadable: integrations then ask
to reconnect; nothing else is lost.

Keys rotate (MultiFernet): new secrets are encrypted under the current key, and any of the
previous keys (`secrets_previous_keys`, or the key file's later lines) still decrypts, until
`calgate secrets rotate` (gateway/secrets_rotation.py) has re-encrypted everything under the
current key and the old ones are removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gateway.config import Settings
from gateway.errors import ConfigError, ExternalError

_cache: dict[str, tuple[Fernet, MultiFernet]] = {}
_signing_cache: dict[tuple[bytes, str], bytes] = {}


class SecretUnreadable(ExternalError):
    """A stored secret cannot be decrypted with the current key (key changed or lost): only
    connecting again (a new password or consent) helps."""

    code = "secret_unreadable"
    action = "reconnect"


def key_file(settings: Settings) -> Path:
    """The key file's path (used when `secrets_key` is empty)."""
    path = Path(settings.secrets_key_file)
    return path if path.is_absolute() else settings.data_dir / path


def _keys_from_file(path: Path) -> list[bytes]:
    try:
        return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two processes starting together cannot each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return [key]


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Replace the key file at once (0600): a crash leaves the old file or the new one."""
    temp = path.with_suffix(".new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"".join(k + b"\n" for k in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _cache.clear()


def _keys(settings: Settings) -> tuple[str, list[bytes]]:
    """Where the keys come from, and the keys, current first."""
    configured = settings.secrets_key.get_secret_value()
    previous = [
        k.strip().encode()
        for k in settings.secrets_previous_keys.get_secret_value().split(",")
        if k.strip()
    ]
    if configured:
        return "secrets_key", [configured.encode(), *previous]
    path = key_file(settings)
    return str(path), [*_keys_from_file(path), *previous]


def _fernets(settings: Settings) -> tuple[Fernet, MultiFernet]:
    source, keys = _keys(settings)
    cache_key = source + "|" + ",".join(k.decode(errors="replace") for k in keys)
    if cache_key not in _cache:
        try:
            fernets = [Fernet(k) for k in keys]
        except ValueError:
            raise ConfigError(
                f"bad setting secrets_key (from {source}): must be 32 url-safe base64 bytes"
            ) from None
        _cache[cache_key] = (fernets[0], MultiFernet(fernets))
    return _cache[cache_key]


def encrypt(settings: Settings, plaintext: str) -> str:
    """`plaintext` encrypted and authenticated under the current key, as ASCII text."""
    return _fernets(settings)[0].encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    """The plaintext of `encrypt`'s output, under the current or a previous key.

    Raises SecretUnreadable when no key opens it."""
    try:
        return _fernets(settings)[1].decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable("the stored secret cannot be read with the current key") from None


def is_current(settings: Settings, token: str) -> bool:
    """True when `token` is encrypted under the current key."""
    try:
        _fernets(settings)[0].decrypt(token.encode("ascii"))
        return True
    except InvalidToken:
        return False


def rotate_token(settings: Settings, token: str) -> str:
    """`token` re-encrypted under the current key (SecretUnreadable when no key opens it)."""
    try:
        return _fernets(settings)[1].rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SecretUnreadable("the stored secret cannot be read with any key") from None


def signing_key(settings: Settings, purpose: str) -> bytes:
    """A key for signing links of one `purpose`, derived from the current secrets key.

    One secret to keep, and a signature made for one purpose never verifies for another.
    Rotating the secrets key ends the links signed under the previous one.
    """
    import hashlib  # only the link signers need it
    import hmac

    _fernets(settings)  # makes sure the key (file) exists and is valid
    current = _keys(settings)[1][0]
    cache_key = (current, purpose)
    if cache_key not in _signing_cache:
        digest = hmac.new(current, b"calgate:" + purpose.encode(), hashlib.sha256).digest()
        _signing_cache[cache_key] = digest
    return _signing_cache[cache_key]


def new_stored_key(settings: Settings) -> str:
    """A fresh random key for a keyed hash, encrypted under the current secrets key: it is
    kept in the database (`stored_keys`) and re-encrypted by `calgate secrets rotate`, so the
    hashes made with it outlive a rotation of the secrets key."""
    import base64

    return encrypt(settings, base64.b64encode(os.urandom(32)).decode("ascii"))


def open_stored_key(settings: Settings, token: str) -> bytes:
    """The key of `new_stored_key`'s output (SecretUnreadable when no key opens it)."""
    import base64

    return base64.b64decode(decrypt(settings, token))


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of `value` under `key`, in hex: finds a value again without keeping it."""
    import hashlib
    import hmac

    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
