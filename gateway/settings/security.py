"""Secrets at rest and the outbound address guard."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class SecuritySettings(BaseSettings):
    """The [secrets] and [outbound] sections."""

    secrets_key: SecretStr = Field(
        SecretStr(""),
        description="Key encrypting provider passwords and tokens at rest (Fernet, "
        "urlsafe base64); better: CALGATE_SECRETS_KEY. Empty = a key file under data_dir.",
    )
    secrets_key_file: str = Field(
        "secrets.key",
        description="Key file (created 0600 when missing), relative to data_dir; used when "
        "secrets.key is empty.",
    )
    secrets_previous_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated earlier keys that still decrypt while `calgate secrets "
        "rotate` re-encrypts under the current one; remove them afterwards.",
    )

    outbound_allow: str = Field(
        "",
        description="Comma-separated hosts or networks (CIDR) that calendar server URLs may "
        "point to even though they are loopback, private or link-local (e.g. 127.0.0.1).",
    )
