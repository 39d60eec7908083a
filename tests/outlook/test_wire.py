"""Graph bodies: Windows zone names to IANA (icalendar's CLDR table), our UID carried both ways,
and an unconfigured server refusing Outlook clearly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connectors import load
from connectors.base import Event
from connectors.outlook import from_body, to_body
from connectors.outlook.wire import iana, transaction_id, uid_of
from tests.conftest import make_settings


def test_windows_zone_names_map_to_iana() -> None:
    assert iana("Pacific Standard Time") == "America/Los_Angeles"
    assert iana("Romance Standard Time") == "Europe/Paris"
    assert iana("Europe/Paris") == "Europe/Paris"
    assert iana("Not A Zone") is None


def test_an_event_round_trips_through_a_graph_body() -> None:
    start = datetime(2027, 7, 1, 7, 30, tzinfo=UTC)
    ours = Event(
        uid="apt_01x@calgate",
        start=start,
        end=start.replace(hour=8, minute=0),
        timezone="Europe/Paris",
    )
    body = to_body(ours)
    assert body["start"] == {"dateTime": "2027-07-01T09:30:00", "timeZone": "Europe/Paris"}
    answered = {
        **body,
        "id": "AAMk1",
        "originalStartTimeZone": "Romance Standard Time",
        "start": {"dateTime": "2027-07-01T07:30:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2027-07-01T08:00:00.0000000", "timeZone": "UTC"},
    }
    back = from_body(answered)
    assert (back.uid, back.start, back.end, back.timezone) == (
        ours.uid,
        ours.start,
        ours.end,
        "Europe/Paris",
    )
    # delta cannot expand the extended property: the transactionId still says it is ours
    delta_row = {k: v for k, v in answered.items() if k != "singleValueExtendedProperties"}
    assert uid_of({**delta_row, "transactionId": transaction_id(ours.uid)}) == ours.uid


def test_without_a_client_id_outlook_is_listed_but_unavailable(tmp_path: Path) -> None:
    provider = load(make_settings(tmp_path)).get("outlook")
    assert provider.unavailable is not None and "microsoft.client_id" in provider.unavailable
    assert provider.oauth is None
