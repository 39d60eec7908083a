"""The MIME message itself: addresses in headers, boundaries."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from gateway.notify.channels.email import EmailEnvelope, build_message
from gateway.notify.rendering import Rendered

TEXT = Rendered(subject="Rappel : rendez-vous", text="Bonjour\n", html="<p>Bonjour</p>")


def _envelope(to_address: str, message_id: str = "<ntf_1@calgate>") -> EmailEnvelope:
    return EmailEnvelope(
        message_id=message_id,
        from_name="Clinique Été",
        from_address="rdv@clinique.example",
        reply_to=None,
        to_name="José Núñez",
        to_address=to_address,
    )


def test_an_international_domain_travels_in_its_ascii_form() -> None:
    raw = build_message(_envelope("jose@exämple.fr"), TEXT, None, None)
    msg = message_from_bytes(raw, policy=policy.default)
    [to] = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("José Núñez", "jose@xn--exmple-cua.fr")
    assert msg["From"].addresses[0].display_name == "Clinique Été"
    assert str(msg["Subject"]) == "Rappel : rendez-vous"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "address",
    [
        "victim@x.example\r\nBcc: other@evil.example",
        "a b@x.example",
        "<a@x.example>",
        "a@x.example,b@evil.example",
        "a@b@x.example",
        "@x.example",
        "a\u2028@x.example",
        "josé@example.fr",  # needs SMTPUTF8; refused at the API too
    ],
)
def test_an_address_unsafe_or_unsendable_in_a_header_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match=r"not a plain address|no ASCII form"):
        build_message(_envelope(address), TEXT, None, None)


def test_each_message_has_its_own_boundary() -> None:
    boundaries = {
        message_from_bytes(build_message(_envelope("a@x.example"), TEXT, None, None)).get_boundary()
        for _ in range(100)
    }
    assert len(boundaries) == 100
