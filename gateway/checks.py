"""`calgate check-config`: the settings loaded, then every outside party they name, reached once.

Each check prints one line, ``ok``, ``skip`` or ``FAIL``, naming the setting to look at; the
exit code is 1 when any check failed. Nothing is sent: SMTP gets a connection (TLS and login as
configured) and QUIT, Twilio a read of the account, the public URL a GET of /healthz.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from gateway.config import Settings
from gateway.notify.channels.email import SmtpChannel
from gateway.notify.channels.sms import TwilioChannel
from gateway.store import migrate
from gateway.store.db import Store

_TIMEOUT = 10.0


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    status: str  # ok | skip | FAIL
    what: str
    words: str


def _failure(exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


async def check_database(settings: Settings) -> Finding:
    """The database answers and its schema is current."""
    store = Store.from_url(settings.database_url, settings=settings)
    where = settings.database_url.split("@")[-1]  # never print a password of the URL
    try:
        async with asyncio.timeout(_TIMEOUT), store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        if not await migrate.is_current(store):
            return Finding(
                "FAIL",
                "database",
                f"{where} answers, but its schema is behind: run calgate migrate",
            )
        return Finding("ok", "database", f"{where} answers and its schema is current")
    except Exception as exc:
        return Finding("FAIL", "database", f"cannot reach [database] url {where}: {_failure(exc)}")
    finally:
        await store.close()


async def check_smtp(settings: Settings) -> Finding:
    """The SMTP server accepts a connection with the configured TLS mode and login."""
    if not settings.smtp_host:
        return Finding("skip", "smtp", "[smtp] host is empty: emails are not sent")
    where = f"{settings.smtp_host}:{settings.smtp_port} ({settings.smtp_tls})"
    try:
        channel = SmtpChannel(settings)
        async with asyncio.timeout(_TIMEOUT):
            client = await channel._connect()
            await client.quit()
    except Exception as exc:
        return Finding("FAIL", "smtp", f"cannot use the SMTP server {where}: {_failure(exc)}")
    login = "logged in" if settings.smtp_username else "no login configured"
    return Finding("ok", "smtp", f"{where} accepted a connection, {login}")


async def check_twilio(settings: Settings) -> Finding:
    """Twilio accepts the account SID and auth token."""
    if not settings.twilio_account_sid:
        return Finding("skip", "twilio", "[twilio] account_sid is empty: SMS are not sent")
    channel = TwilioChannel(settings)
    if not channel.configured:
        return Finding(
            "FAIL", "twilio", "[twilio] needs auth_token and from (or messaging_service_sid) too"
        )

    def fetch() -> None:
        sid = settings.twilio_account_sid
        channel._client().api.v2010.accounts(sid).fetch()

    try:
        await asyncio.wait_for(asyncio.to_thread(fetch), _TIMEOUT)
    except Exception as exc:
        return Finding(
            "FAIL", "twilio", f"Twilio refused the account or is unreachable: {_failure(exc)}"
        )
    finally:
        await channel.close()
    return Finding("ok", "twilio", f"the account is readable at {settings.twilio_api_base}")


async def check_public_url(settings: Settings) -> Finding:
    """public_url reaches a calgate (its /healthz answers)."""
    url = settings.public_url + "/healthz"

    def get() -> int:
        # public_url is validated to be http(s), so no file: or custom scheme reaches here.
        request = urllib.request.Request(url, headers={"User-Agent": "calgate check-config"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:  # noqa: S310
            return int(answer.status)

    try:
        status = await asyncio.to_thread(get)
    except urllib.error.HTTPError as exc:
        return Finding("FAIL", "public_url", f"{url} answered {exc.code}, not calgate's health")
    except Exception as exc:
        return Finding(
            "FAIL",
            "public_url",
            f"{url} is not reachable from here ({_failure(exc)}); feed links and webhooks "
            "will not work unless it is reachable from outside",
        )
    return Finding("ok", "public_url", f"{url} answered {status}")


async def check_tls(settings: Settings) -> Finding:
    """server.tls_cert_file and tls_key_file load as a pair."""
    if not settings.server_tls_cert_file:
        return Finding("skip", "tls", "no [server] tls_cert_file: plain HTTP (use a proxy for TLS)")
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.server_tls_cert_file, settings.server_tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        return Finding("FAIL", "tls", f"cannot load the certificate and key: {_failure(exc)}")
    return Finding("ok", "tls", f"{settings.server_tls_cert_file} and its key load")


async def check_data_dir(settings: Settings) -> Finding:
    """data_dir exists (or can be made) and is writable."""
    return await asyncio.to_thread(_data_dir_writable, Path(settings.data_dir))


def _data_dir_writable(folder: Path) -> Finding:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".calgate-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return Finding("FAIL", "data_dir", f"{folder} is not writable: {_failure(exc)}")
    return Finding("ok", "data_dir", f"{folder.resolve()} is writable")


CHECKS: tuple[Callable[[Settings], Awaitable[Finding]], ...] = (
    check_data_dir,
    check_database,
    check_tls,
    check_smtp,
    check_twilio,
    check_public_url,
)


async def findings(settings: Settings) -> list[Finding]:
    """Every check's finding, in order."""
    return [await check(settings) for check in CHECKS]


def run(settings: Settings) -> int:
    """Print the report; 0 when nothing failed, else 1."""
    print("settings: ok (every value valid)")
    results = asyncio.run(findings(settings))
    for finding in results:
        print(f"{finding.what}: {finding.status} ({finding.words})")
    return 1 if any(f.status == "FAIL" for f in results) else 0
