"""`calgate demo`: a demo account with practitioners, clients and appointments across zones."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain import accounts, appointments, people
from gateway.store.types import utcnow

# (name, zone, locale) of each demo practitioner; all data here is invented.
PRACTITIONERS = [
    ("Dr Ada Demo", "Europe/London", "en-GB"),
    ("Dr Ben Beispiel", "America/New_York", "en-US"),
    ("Dr Chandra Udaharan", "Asia/Kolkata", "en-IN"),
]
CLIENTS = [
    ("Client One", "client.one@example.com", "+442071838750", "Europe/London", "en-GB"),
    ("Client Deux", "client.deux@example.com", "+33142685300", "Europe/Paris", "fr"),
    ("Client Three", "client.three@example.com", "+12125550123", None, "en-US"),
]


async def create_demo(session: AsyncSession) -> tuple[str, str]:
    """Create the demo data; returns (account id, API key secret)."""
    account, issued = await accounts.create_account(
        session, "Demo Practice", timezone="Europe/London", country="GB"
    )
    users = [
        await people.create_user(
            session, account, {"name": n, "email": None, "timezone": z, "locale": loc}
        )
        for n, z, loc in PRACTITIONERS
    ]
    clients = [
        await people.create_client(
            session,
            account,
            {
                "name": n,
                "email": e,
                "phone": p,
                "timezone": z,
                "locale": loc,
                "notify_sms": True,
                "sms_consent": True,
            },
        )
        for n, e, p, z, loc in CLIENTS
    ]
    today = utcnow().date()
    for day in range(1, 4):
        for user, client, hour in zip(users, clients, (9, 14, 11), strict=True):
            zone = ZoneInfo(user.timezone)
            start = datetime.combine(today + timedelta(days=day), time(hour), zone)
            await appointments.create_appointment(
                session,
                account,
                {
                    "user_id": user.id,
                    "client_id": client.id,
                    "start_at": start,
                    "end_at": start + timedelta(minutes=50),
                    "title": "Consultation",
                    "location": "Room 1",
                },
            )
    return account.id, issued.secret


def next_steps(base_url: str, secret: str) -> str:
    """The curl commands a newcomer tries next."""
    auth = f'-H "Authorization: Bearer {secret}"'
    return "\n".join(
        [
            "Try next:",
            f"  curl -s {auth} {base_url}/v1/users",
            f"  curl -s {auth} '{base_url}/v1/appointments?limit=5'",
            f"  curl -s {auth} {base_url}/v1/usage/summary",
            f"  open {base_url}/docs for the whole API",
        ]
    )
