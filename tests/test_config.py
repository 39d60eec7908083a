"""Settings: file, environment, defaults, and one clear line for every bad setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import DEFAULT_CONFIG_FILE, Settings, load_settings
from gateway.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("CALGATE_"):
            monkeypatch.delenv(key)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calgate.toml"
    path.write_text(text)
    return path


def test_shipped_config_loads_and_documents_every_setting():
    shipped = REPO / DEFAULT_CONFIG_FILE
    settings = load_settings(shipped)
    assert settings == Settings()  # the file shows the defaults
    text = shipped.read_text()
    for name in Settings.model_fields:
        key = name if f"\n{name} = " in text else name.split("_", 1)[1]
        match = re.search(rf"((?:^#.*\n)+){re.escape(key)} = ", text, re.MULTILINE)
        assert match, f"{name} is not in {shipped} with a comment above it"


def test_sections_map_to_flat_settings_and_env_wins(tmp_path, monkeypatch):
    path = _write(tmp_path, '[server]\nport = 9001\n[database]\nurl = "sqlite+aiosqlite:///x.db"\n')
    assert load_settings(path).server_port == 9001
    monkeypatch.setenv("CALGATE_SERVER_PORT", "9002")
    monkeypatch.setenv("CALGATE_PUBLIC_URL", "https://cal.example.com/")
    settings = load_settings(path)
    assert settings.server_port == 9002
    assert settings.public_url == "https://cal.example.com"
    assert settings.database_url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("[server]\nprot = 1\n", {}, "unknown setting [server] prot in"),
        ("colour = 1\n", {}, "unknown setting colour in"),
        ('[database]\nurl = "mysql://x"\n', {}, "bad setting database_url (from "),
        ('public_url = "ftp://x"\n', {}, "bad setting public_url"),
        ('default_timezone = "Europe/Londn"\n', {}, "bad setting default_timezone"),
        ("[server]\nport = 70000\n", {}, "bad setting server_port"),
        (
            "",
            {"CALGATE_DATABASE_URL": "nope"},
            "bad setting database_url (from CALGATE_DATABASE_URL)",
        ),
        ("", {"CALGATE_SERVR_PORT": "1"}, "unknown setting CALGATE_SERVR_PORT"),
        ("[server\n", {}, "is not valid TOML"),
    ],
)
def test_bad_settings_name_themselves(tmp_path, monkeypatch, text, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, text))
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
