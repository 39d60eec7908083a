"""GET /metrics scraped and parsed with prometheus-client's parser; `calgate check-config`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from gateway import checks
from gateway.app import create_app
from gateway.config import Settings
from gateway.domain import accounts
from gateway.store.db import Store
from tests.notify.conftest import deliver, notify_settings
from tests.notify.seed import seed_reminders
from tests.peers.smtp import SmtpServer, SmtpSink, free_port
from tests.peers.twilio import TwilioPeer, TwilioServer

TOKEN = "scrape-me-0123456789"
# Our ids (prefix_ULID), addresses and tokens: none may appear in a label value.
_PERSONAL = re.compile(r"^[a-z]{3}_[0-9A-Z]{26}$|@|\d+\.\d+\.\d+\.\d+")


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpServer() as sink:
        yield sink


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioServer() as peer:
        yield peer


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer) -> Settings:
    return notify_settings(tmp_path, smtp, twilio, metrics_token=SecretStr(TOKEN))


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, store, run_ticks=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _scrape(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(v for got, v in samples.get(name, []) if labels.items() <= got.items())


async def test_metrics_scrape_parses_and_counts_the_work(
    api: httpx.AsyncClient, store: Store, settings: Settings, smtp: SmtpSink
):
    async with store.transaction() as session:
        _, issued = await accounts.create_account(
            session, "Metrics Clinic", timezone="UTC", country="GB"
        )
    auth = {"Authorization": f"Bearer {issued.secret}"}
    scrape = {"Authorization": f"Bearer {TOKEN}"}
    # This process's counters also hold earlier tests' requests: compare against a first scrape.
    before = _scrape((await api.get("/metrics", headers=scrape)).text)
    user = (await api.post("/v1/users", json={"name": "Dr M"}, headers=auth)).json()
    assert (await api.get(f"/v1/users/{user['id']}", headers=auth)).status_code == 200
    assert (
        await api.get("/v1/users/usr_00000000000000000000000000", headers=auth)
    ).status_code == 404
    now = datetime.now(UTC)
    await seed_reminders(store, [now - timedelta(seconds=30)] * 3, clients=3)
    assert await deliver(store, settings) == 3

    assert (await api.get("/metrics")).status_code == 401
    wrong = await api.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    answer = await api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = _scrape(answer.text)

    route = "/v1/users/{user_id}"
    count = "calgate_http_request_duration_seconds_count"
    for status in ("200", "404"):
        grew = _value(samples, count, route=route, status=status) - _value(
            before, count, route=route, status=status
        )
        assert grew == 1, status
    assert _value(samples, "calgate_outbox_messages", state="sent", channel="email") == 3
    assert _value(samples, "calgate_delivery_attempts_recent", channel="email", outcome="sent") == 3
    # Sent about 30 s after their planned time: all three in the 60 s bucket, none by 15 s.
    assert _value(samples, "calgate_reminder_lateness_seconds_gcount") == 3
    assert _value(samples, "calgate_reminder_lateness_seconds_bucket", le="60.0") == 3
    assert _value(samples, "calgate_reminder_lateness_seconds_bucket", le="15.0") == 0
    claimed = {"table": "notify_outbox", "event": "claimed"}
    grew = _value(samples, "calgate_leases_total", **claimed) - _value(
        before, "calgate_leases_total", **claimed
    )
    assert grew == 3
    assert "calgate_jobs_due" in answer.text
    for name, rows in samples.items():
        for labels, _ in rows:
            for value in labels.values():
                assert not _PERSONAL.search(value), (name, labels)


async def test_metrics_not_on_the_api_port_without_a_token(tmp_path: Path, store: Store):
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/calgate.db", data_dir=tmp_path
    )
    transport = httpx.ASGITransport(app=create_app(settings, store, run_ticks=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        assert (await c.get("/metrics")).status_code == 404


async def test_check_config_names_what_is_wrong(
    settings: Settings, store: Store, twilio: TwilioPeer
):
    found = {f.what: f for f in await checks.findings(settings)}
    assert found["database"].status == "ok"
    assert found["smtp"].status == "ok"
    assert found["twilio"].status == "ok"
    assert found["tls"].status == "skip"
    # public_url of these settings is not served by anything here.
    assert found["public_url"].status == "FAIL" and "not reachable" in found["public_url"].words

    broken = settings.model_copy(
        update={
            "smtp_port": free_port(),
            "twilio_auth_token": SecretStr("wrong"),
            "public_url": f"http://127.0.0.1:{free_port()}",
        }
    )
    found = {f.what: f for f in await checks.findings(broken)}
    assert found["smtp"].status == "FAIL" and "cannot use the SMTP server" in found["smtp"].words
    assert found["twilio"].status == "FAIL" and "refused" in found["twilio"].words
    assert found["public_url"].status == "FAIL"
