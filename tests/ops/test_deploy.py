"""deploy/: the systemd unit, the container recipe and the compose file say what we claim."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)  # systemd repeats keys on purpose
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "calgate.service")
    return parser


def test_unit_runs_calgate_hardened_with_state_directory():
    service = _unit()["Service"]
    args = shlex.split(service["ExecStart"])
    assert Path(args[0]).name == "calgate"
    parsed = build_parser().parse_args(args[1:])
    assert parsed.command == "serve" and parsed.role == "all"
    assert service["StateDirectory"] == "calgate"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["DynamicUser"] == "yes"
    assert service["KillSignal"] == "SIGTERM"


def test_unit_exposure_is_low():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--threshold=25",
            str(DEPLOY / "calgate.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert re.search(r"Overall exposure level for calgate.service: [0-2]\.\d", result.stdout)


def test_container_is_multi_stage_non_root_with_readiness_check():
    recipe = (DEPLOY / "Containerfile").read_text()
    assert len(re.findall(r"^FROM ", recipe, re.MULTILINE)) == 2
    assert re.search(r"^USER calgate$", recipe, re.MULTILINE)
    healthcheck = recipe[recipe.index("HEALTHCHECK") :]
    assert "/readyz" in healthcheck.split("ENTRYPOINT")[0]
    # Both stages on one base, chosen by --build-arg PYTHON_IMAGE (a mirror or a local stand-in).
    assert re.findall(r"^FROM (\S+)", recipe, re.MULTILINE) == ["${PYTHON_IMAGE}"] * 2
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", recipe, re.MULTILINE)


def test_compose_has_postgres_one_api_and_one_worker():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres")
    roles = {}
    for name in ("api", "worker"):
        parsed = build_parser().parse_args(services[name]["command"])
        roles[name] = parsed.role
        url = services[name]["environment"]["CALGATE_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@postgres:" in url
    assert roles == {"api": "api", "worker": "worker"}
    # The secrets key file under data_dir encrypts tokens and signs links: one for both.
    mounts = [services[name]["volumes"] for name in ("api", "worker")]
    assert mounts[0] == mounts[1] == ["calgate-data:/var/lib/calgate"]
    assert "calgate-data" in compose["volumes"]
