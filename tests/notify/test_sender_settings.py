"""The daemon's SMS sender settings: checked by the notify feature when the app is built (the
config layer knows nothing of senders), refused with one line naming the setting and its
source, and used in E.164 form."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.notify.channels.sms import TwilioChannel


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the default SQLite file, were it opened, lands there
    for key in list(os.environ):
        if key.startswith("CALGATE_"):
            monkeypatch.delenv(key)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calgate.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ('[twilio]\nfrom = "Bright Dental Clinic"\n', {}, "bad setting twilio_from (from "),
        (
            "",
            {"CALGATE_TWILIO_MESSAGING_SERVICE_SID": "+442071838750"},
            "bad setting twilio_messaging_service_sid (from CALGATE_TWILIO_MESSAGING_SERVICE_SID)",
        ),
    ],
)
def test_a_bad_sender_stops_the_app_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    env: dict[str, str],
    expected: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = _write(tmp_path, text)
    monkeypatch.setenv("CALGATE_CONFIG", str(path))
    settings = load_settings(path)
    with pytest.raises(ConfigError) as caught:
        create_app(settings, run_ticks=False)
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_a_sender_number_is_used_in_e164(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, '[twilio]\nfrom = "+44 20 7183 8750"\n'))
    create_app(settings, run_ticks=False)  # accepted
    assert TwilioChannel(settings).default_sender == "+442071838750"


def test_config_imports_no_feature() -> None:
    import ast

    import gateway.config

    tree = ast.parse(Path(str(gateway.config.__file__)).read_text())
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    features = ("gateway.notify", "gateway.feeds", "gateway.sync", "gateway.google", "gateway.api")
    assert not [m for m in imported if m.startswith(features)]
