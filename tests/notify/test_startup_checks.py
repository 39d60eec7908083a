"""The notify feature's start-up checks (the config layer knows nothing of senders or channels):
the daemon's SMS sender settings, refused with one line naming the setting and its source and
used in E.164 form; and a notification channel that cannot load, refused with one line naming
the channel and why, by the app factory and by `calgate serve` in every role."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

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


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "cannot be read (No such file or directory)"),
        ("not a certificate\n", "holds no certificate that can be read"),
    ],
)
def test_a_channel_that_cannot_load_stops_the_app_with_one_line(
    tmp_path: Path, content: str | None, why: str
) -> None:
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_text(content)
    settings = load_settings(_write(tmp_path, f'[smtp]\nca_file = "{ca_file}"\n'))
    with pytest.raises(ConfigError) as caught:
        create_app(settings, run_ticks=False)
    assert caught.value.message.startswith("notification channel email cannot load: ")
    assert f"smtp.ca_file {ca_file}: {why}" in caught.value.message
    assert "\n" not in caught.value.message


def test_a_readable_ca_file_loads(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    settings = load_settings(_write(tmp_path, f'[smtp]\nca_file = "{ca_file}"\n'))
    create_app(settings, run_ticks=False)  # accepted


def _serve(tmp_path: Path, role: str, *args: str, **env: str) -> list[str]:
    """`calgate serve` in `role`: its standard error lines, once it has exited with 2."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "calgate"), "serve", "--role", role, *args],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")},
            "CALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/calgate.db",
            "CALGATE_SERVER_PORT": "1",  # never reached: nothing may listen
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    return result.stderr.strip().splitlines()


@pytest.mark.parametrize("role", ["worker", "all"])
def test_serve_refuses_a_channel_that_cannot_load_in_every_role(tmp_path: Path, role: str) -> None:
    # A worker never builds the app: before this check it started and failed at the first tick.
    lines = _serve(tmp_path, role, CALGATE_SMTP_CA_FILE=str(tmp_path / "missing.pem"))
    assert lines == [
        f"calgate: notification channel email cannot load: smtp.ca_file {tmp_path}/missing.pem: "
        "cannot be read (No such file or directory)"
    ]
    assert not (tmp_path / "calgate.db").exists()  # refused before any migration


def test_serve_names_the_config_file_a_bad_sender_came_from(tmp_path: Path) -> None:
    path = _write(tmp_path, '[twilio]\nfrom = "Bright Dental Clinic"\n')
    lines = _serve(tmp_path, "worker", "--config", str(path))
    assert len(lines) == 1
    assert lines[0].startswith(f"calgate: bad setting twilio_from (from {path}): must be ")
