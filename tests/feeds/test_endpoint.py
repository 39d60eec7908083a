"""GET|HEAD /feeds/{token}.ics: misses, headers, conditional requests, gzip."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import pytest

from tests.feeds.conftest import Feeds
from tests.support import Api


async def _feed_with_one(api: Api, feeds: Feeds, **feed: Any) -> tuple[dict[str, Any], str]:
    user = await api.user()
    client = await api.client()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    apt = await api.appointment(
        user["id"],
        client["id"],
        start=start.isoformat(),
        end=(start + timedelta(hours=1)).isoformat(),
    )
    made = await feeds.create(scope="user", user_id=user["id"], **feed)
    return made, apt["id"]


async def _raw_get(http: httpx.AsyncClient, path: str, **headers: str) -> httpx.Response:
    """A GET that sends only the given headers (no Accept, no Accept-Encoding, no UA)."""
    request = http.build_request("GET", path)
    for name in list(request.headers):
        if name.lower() != "host":
            del request.headers[name]
    request.headers.update(headers)
    return await http.send(request)


async def test_headers_of_a_feed(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds)
    path = httpx.URL(feed["url"]).path
    response = await _raw_get(feeds.http, path)  # no Accept header at all, like many apps
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "private" in response.headers["cache-control"]
    assert response.headers["vary"].lower() == "accept-encoding"
    assert "content-encoding" not in response.headers
    assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('"')
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert modified <= datetime.now(UTC)
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content.startswith(b"BEGIN:VCALENDAR\r\n")


async def test_head_has_the_headers_and_no_body(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds)
    path = httpx.URL(feed["url"]).path
    got = await _raw_get(feeds.http, path)
    head = await feeds.http.head(path, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    for name in ("etag", "last-modified", "content-type", "content-length", "cache-control"):
        assert head.headers[name] == got.headers[name], name


async def test_misses_all_look_the_same(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds)
    token = httpx.URL(feed["url"]).path.removeprefix("/feeds/").removesuffix(".ics")
    deleted = await feeds.create(scope="account")
    await api.delete(f"/v1/feeds/{deleted['id']}")
    paths = [
        "/feeds/" + "A" * 43 + ".ics",  # unknown
        "/feeds/" + token[:-1] + ".ics",  # too short
        "/feeds/" + token + "A.ics",  # too long
        "/feeds/" + token[:-1] + "+.ics",  # outside the alphabet
        "/feeds/" + token[:-1] + "%25.ics",
        "/feeds/" + "A" * 43,  # the subscription page of an unknown token
        "/feeds/" + token[:-1],  # ... of a malformed one
        "/feeds/" + token + ".ics.ics",
        "/feeds/" + token.lower() + ".ics",  # tokens are case-sensitive
        "/feeds/..%2F..%2Fv1%2Fusers.ics",  # traversal
        "/feeds/%2e%2e/%2e%2e/etc/passwd",
        "/feeds/" + token + "/x.ics",
        "/feeds/",
        httpx.URL(deleted["url"]).path,  # revoked
    ]
    answers = []
    for path in paths:
        response = await feeds.http.get(path)
        answers.append(
            (response.status_code, response.content, response.headers.get("content-type"))
        )
    assert {a for a in answers} == {(404, b"Not found\n", "text/plain; charset=utf-8")}, answers
    assert (await feeds.fetch(feed)).status_code == 200  # the real one still works
    assert (await feeds.http.get("/feeds/" + token)).status_code == 200  # and its page


async def test_only_get_and_head(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds)
    path = httpx.URL(feed["url"]).path
    for method in ("POST", "PUT", "DELETE"):
        assert (await feeds.http.request(method, path)).status_code == 405


async def test_if_none_match(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds)
    first = await feeds.fetch(feed, **{"Accept-Encoding": "identity"})
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        again = await feeds.fetch(feed, **{"If-None-Match": header, "Accept-Encoding": "identity"})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["last-modified"] == first.headers["last-modified"]
    other = await feeds.fetch(feed, **{"If-None-Match": '"something-else"'})
    assert other.status_code == 200


async def test_if_modified_since(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds)
    first = await feeds.fetch(feed)
    modified = parsedate_to_datetime(first.headers["last-modified"])

    async def ims(moment: datetime | str) -> int:
        value = moment if isinstance(moment, str) else format_datetime(moment, usegmt=True)
        return (await feeds.fetch(feed, **{"If-Modified-Since": value})).status_code

    assert await ims(modified) == 304
    assert await ims(modified - timedelta(seconds=1)) == 200  # stale
    assert await ims(modified - timedelta(days=3)) == 200
    assert await ims(datetime.now(UTC) + timedelta(days=1)) == 200  # in the future: invalid
    assert await ims("yesterday-ish") == 200  # unparseable: ignored
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    both = await feeds.fetch(
        feed,
        **{"If-None-Match": '"old"', "If-Modified-Since": first.headers["last-modified"]},
    )
    assert both.status_code == 200


async def test_a_change_in_the_same_second_still_gets_200(api: Api, feeds: Feeds):
    feed, apt_id = await _feed_with_one(api, feeds, privacy="limited")
    first = await feeds.fetch(feed)
    changed = await api.patch(f"/v1/appointments/{apt_id}", {"title": "Moved session"})
    assert changed.status_code == 200
    by_date = await feeds.fetch(feed, **{"If-Modified-Since": first.headers["last-modified"]})
    assert by_date.status_code == 200
    assert "Moved session" in by_date.text
    assert parsedate_to_datetime(by_date.headers["last-modified"]) > parsedate_to_datetime(
        first.headers["last-modified"]
    )
    by_tag = await feeds.fetch(feed, **{"If-None-Match": first.headers["etag"]})
    assert by_tag.status_code == 200
    assert by_tag.headers["etag"] != first.headers["etag"]


async def test_a_change_the_feed_does_not_show_keeps_its_validators(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds, privacy="full")
    first = await feeds.fetch(feed)
    # A client's email is in no feed: the feeds' versions go up, their bytes stay the same.
    client_id = (await api.get("/v1/clients")).json()["data"][0]["id"]
    edited = await api.patch(f"/v1/clients/{client_id}", {"email": "new@example.com"})
    assert edited.status_code == 200
    again = await feeds.fetch(feed, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    by_date = await feeds.fetch(feed, **{"If-Modified-Since": first.headers["last-modified"]})
    assert by_date.status_code == 304
    # Her name is in a full feed.
    await api.patch(f"/v1/clients/{client_id}", {"name": "Renamed Person"})
    renamed = await feeds.fetch(feed, **{"If-None-Match": first.headers["etag"]})
    assert renamed.status_code == 200
    assert "Renamed Person" in renamed.text


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("identity", False),
        ("gzip;q=0", False),
        ("br", False),
        ("*;q=0", False),
    ],
)
async def test_gzip_when_accepted(api: Api, feeds: Feeds, accept: str, gzipped: bool):
    feed, _ = await _feed_with_one(api, feeds)
    path = httpx.URL(feed["url"]).path
    plain = await _raw_get(feeds.http, path)
    response = await _raw_get(feeds.http, path, **{"Accept-Encoding": accept})
    assert response.status_code == 200
    assert (response.headers.get("content-encoding") == "gzip") is gzipped
    assert response.content == plain.content  # httpx decodes gzip transparently
    if gzipped:
        assert response.headers["etag"] != plain.headers["etag"]
        assert int(response.headers["content-length"]) < len(plain.content)


async def test_gzip_bytes_and_conditional_gzip(api: Api, feeds: Feeds):
    feed, _ = await _feed_with_one(api, feeds)
    path = httpx.URL(feed["url"]).path
    async with feeds.http.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        etag = response.headers["etag"]
    assert gzip.decompress(raw).startswith(b"BEGIN:VCALENDAR\r\n")
    again = await _raw_get(feeds.http, path, **{"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
