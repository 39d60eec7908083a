"""Secrets at rest and the SSRF guard."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from gateway import secrets
from gateway.errors import ConfigError, ValidationFailed
from gateway.sync import outbound
from tests.conftest import make_settings


def test_key_file_is_generated_0600_and_reused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    token = secrets.encrypt(settings, "hunter2")
    assert "hunter2" not in token
    key_file = tmp_path / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert secrets.decrypt(make_settings(tmp_path), token) == "hunter2"


def test_key_from_the_environment_setting(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = make_settings(tmp_path, secrets_key=SecretStr(key))
    token = secrets.encrypt(settings, "pw")
    assert not (tmp_path / "secrets.key").exists()
    other = make_settings(tmp_path / "b", secrets_key=SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(other, token)


def test_bad_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="secrets_key"):
        secrets.encrypt(make_settings(tmp_path, secrets_key=SecretStr("short")), "x")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5232/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.0.0.8/",
        "http://192.168.1.1/",
        "http://169.254.169.254/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
async def test_internal_addresses_are_refused_by_default(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationFailed, match="internal address"):
        await outbound.check_url(make_settings(tmp_path), url)


async def test_allowed_networks_and_hosts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, outbound_allow="10.0.0.0/8, caldav.internal")
    assert await outbound.check_url(settings, "http://10.2.3.4/dav/")
    assert await outbound.check_url(settings, "https://caldav.internal/")
    with pytest.raises(ValidationFailed):
        await outbound.check_url(settings, "http://192.168.0.1/")
