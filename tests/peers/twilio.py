"""A Twilio stand-in on 127.0.0.1: the Messages resource and signed status callbacks.

It answers ``POST /2010-04-01/Accounts/{Sid}/Messages.json`` as Twilio documents it: Basic auth
with the account SID and auth token, a form body (To, From or MessagingServiceSid, Body,
StatusCallback), 201 with a JSON message resource, or a JSON error body
``{code, message, more_info, status}``. Tests queue failures (`fail_next`); every request is
recorded, headers included. `callback()` posts a status to the StatusCallback URL signed with
X-Twilio-Signature the way Twilio does (twilio.request_validator).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twilio.request_validator import RequestValidator

# Error bodies as Twilio writes them (https://www.twilio.com/docs/api/errors): the message of
# 21211 and 21614 quotes the number it refused, "{to}" below.
_MESSAGES = {
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "The 'To' number {to} is not a valid mobile number."),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
}


@dataclass
class Sent:
    """One request that reached the stand-in."""

    form: dict[str, str]
    headers: dict[str, str]
    status: int
    sid: str | None
    connection: int = 0  # the client's port: requests over one kept-alive connection share it


@dataclass
class TwilioPeer:
    """The stand-in's state."""

    account_sid: str
    auth_token: str
    requests: list[Sent] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)  # error codes for the next requests
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, *codes: int) -> None:
        self.failures.extend(codes)

    @property
    def accepted(self) -> list[Sent]:
        return [r for r in self.requests if r.status == 201]

    def sign(self, url: str, params: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(url, params))


def _handler(peer: TwilioPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # as api.twilio.com: connections are kept alive

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            path = f"/2010-04-01/Accounts/{peer.account_sid}/Messages.json"
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            expected = (
                "Basic "
                + base64.b64encode(f"{peer.account_sid}:{peer.auth_token}".encode()).decode()
            )
            if self.path != path:
                self._json(404, {"code": 20404, "message": "Not found", "status": 404})
                return
            if headers.get("authorization") != expected:
                peer.requests.append(Sent(form, headers, 401, None, self.client_address[1]))
                self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            if peer.failures:
                code = peer.failures.pop(0)
                status, message = _MESSAGES[code]
                peer.requests.append(Sent(form, headers, status, None, self.client_address[1]))
                self._json(
                    status,
                    {
                        "code": code,
                        "message": message.format(to=form.get("To", "")),
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status,
                    },
                )
                return
            sid = "SM" + uuid.uuid4().hex
            peer.requests.append(Sent(form, headers, 201, sid, self.client_address[1]))
            self._json(
                201,
                {
                    "sid": sid,
                    "account_sid": peer.account_sid,
                    "to": form.get("To"),
                    "from": form.get("From"),
                    "messaging_service_sid": form.get("MessagingServiceSid"),
                    "body": form.get("Body"),
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "uri": f"{path[:-5]}/{sid}.json",
                },
            )

    return Handler


class TwilioServer:
    """Runs a TwilioPeer in a thread."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "t" * 32) -> None:
        self.peer = TwilioPeer(account_sid, auth_token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.peer))
        self.peer.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TwilioPeer:
        self._thread.start()
        return self.peer

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
