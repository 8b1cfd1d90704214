"""The per-recipient message from bytes, checked with the standard library parser, and simple_message."""

from __future__ import annotations

import base64
import email
import re
import subprocess
from email import policy
from pathlib import Path

import dkim
import pytest

from bulletin.audience.links import Links
from bulletin.config import Settings, load_settings
from bulletin.delivery.message import (
    ListIdentity,
    MessageSkeleton,
    RecipientRow,
    check_recipient,
    simple_message,
)
from bulletin.errors import DeliveryError
from tests.delivery.conftest import make_compiled

LIST = ListIdentity(id=3, slug="shared-services", name="Shared Services e-bulletin",
                    from_name="Équipe Shared Services", from_address="bulletin@shared-services.example.gov.uk")


@pytest.fixture
def conf(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, public_base_url="https://news.example.org", sending_domain="news.example.org")


def _parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def test_the_filled_bytes_parse_to_the_same_message_the_compiled_issue_fills(conf: Settings) -> None:
    compiled = make_compiled()
    sk = MessageSkeleton(conf, compiled, LIST, 42)
    out = sk.build(RecipientRow(7, "ann@example.org", "Ann Example"))
    msg = _parse(out.data)
    filled = compiled.fill(sk.recipient(RecipientRow(7, "ann@example.org", "Ann Example")))
    assert msg.get_content_type() == "multipart/alternative"
    # Text parts are canonical CRLF on the wire; the parser hands the CRLF back.
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == filled.text
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == filled.html
    assert str(msg["To"]) == "Ann Example <ann@example.org>"
    assert str(msg["From"]) == "Équipe Shared Services <bulletin@shared-services.example.gov.uk>"
    assert str(msg["Subject"]) == compiled.subject
    assert msg["Precedence"] == "bulk" and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Shared Services e-bulletin <shared-services.news.example.org>"


def test_line_ends_are_crlf_and_lines_stay_short(conf: Settings) -> None:
    out = MessageSkeleton(conf, make_compiled(filler=60), LIST, 1).build(RecipientRow(1, "a@example.org", "A"))
    assert b"\n" not in out.data.replace(b"\r\n", b"") and b"\r" not in out.data.replace(b"\r\n", b"")
    head, body = out.data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) < 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_identity_headers_come_from_links_and_parse_back(conf: Settings) -> None:
    links = Links.for_settings(conf)
    out = MessageSkeleton(conf, make_compiled(), LIST, 42).build(RecipientRow(7, "ann@example.org", "Ann"))
    msg = _parse(out.data)
    assert msg["Message-ID"] == out.message_id == links.for_message(7, LIST.id, 42).message_id
    assert links.parse_message_id(out.message_id) == (7, 42)
    assert links.parse_bounce_address(out.envelope_from) == (7, 42)
    reply = msg["Reply-To"].addresses[0]
    assert reply.display_name == LIST.from_name and links.parse_reply_address(reply.addr_spec) == (7, 42)
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert https == links.for_message(7, 3, 42).unsubscribe_url and https.startswith("https://news.example.org/unsubscribe/")
    assert mailto == links.for_message(7, 3, 42).unsubscribe_mailto


def test_non_ascii_names_are_encoded_and_decode_back(conf: Settings) -> None:
    out = MessageSkeleton(conf, make_compiled(), LIST, 1).build(RecipientRow(1, "zoe@example.org", "Zoë Ångström-Łukasz"))
    head = out.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert _parse(out.data)["To"].addresses[0].display_name == "Zoë Ångström-Łukasz"


def test_cr_lf_in_a_name_never_reaches_a_header(conf: Settings) -> None:
    row = RecipientRow(1, "a@example.org", "Eve\r\nBcc: victim@example.com\nX-Evil: 1")
    msg = _parse(MessageSkeleton(conf, make_compiled(), LIST, 1).build(row).data)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert "Bcc: victim@example.com" in msg["To"].addresses[0].display_name


def test_a_test_send_is_marked_in_the_subject(conf: Settings) -> None:
    out = MessageSkeleton(conf, make_compiled(), LIST, 1, test=True).build(RecipientRow(1, "a@example.org", ""))
    assert str(_parse(out.data)["Subject"]).startswith("[TEST] ")


@pytest.mark.parametrize("address", ["", "no-at-sign", "two words@example.org", "zoë@exämple.org",
                                     "a@example.org\r\nBcc: x@y"])
def test_unusable_addresses_are_refused_naming_them(address: str) -> None:
    with pytest.raises(DeliveryError, match="subscriber #9"):
        check_recipient(RecipientRow(9, address, "x"))


def _dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "1024"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def test_dkim_signature_covers_from_subject_and_list_unsubscribe_and_verifies(conf: Settings, tmp_path: Path) -> None:
    key, record = _dkim_key(tmp_path)
    conf = conf.model_copy(update={"dkim_key_path": key, "dkim_selector": "sel"})
    out = MessageSkeleton(conf, make_compiled(), LIST, 1).build(RecipientRow(1, "a@example.org", "A"))
    assert out.data.startswith(b"DKIM-Signature:")
    sig = _parse(out.data)["DKIM-Signature"].replace(" ", "")
    signed = set(re.search(r"h=([^;]+)", sig).group(1).lower().split(":"))  # type: ignore[union-attr]
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    assert "d=shared-services.example.gov.uk" in sig

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel._domainkey.shared-services.example.gov.uk."
        return record

    assert dkim.verify(out.data, dnsfunc=dns)
    tampered = out.data.replace(b"Subject: Shared", b"Subject: Spoofed", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_an_unreadable_dkim_key_is_a_config_error_naming_the_setting(conf: Settings, tmp_path: Path) -> None:
    from bulletin.errors import ConfigError

    conf = conf.model_copy(update={"dkim_key_path": tmp_path / "missing.pem"})
    with pytest.raises(ConfigError, match="dkim_key_path"):
        MessageSkeleton(conf, make_compiled(), LIST, 1)


def test_simple_message_is_crlf_threaded_and_header_safe(conf: Settings) -> None:
    data, mid = simple_message(conf, to="Zoë <zoe@example.org>", subject="Re: your reply\r\nBcc: x@y.example",
                               text="Thanks.\n", html="<p>Thanks.</p>", in_reply_to="<a@b>",
                               references="<a@b>", reply_to="team@example.org")
    assert b"\n" not in data.replace(b"\r\n", b"")
    msg = _parse(data)
    assert msg["Message-ID"] == mid and mid.endswith("@news.example.org>")
    assert msg["Bcc"] is None and str(msg["Subject"]) == "Re: your reply Bcc: x@y.example"
    assert msg["To"].addresses[0].display_name == "Zoë"
    assert msg["In-Reply-To"] == "<a@b>" and msg["References"] == "<a@b>"
    assert msg["From"].addresses[0].addr_spec == "bulletin@news.example.org"
    assert msg.get_body(("plain",)).get_content() == "Thanks.\r\n"
    assert msg.get_body(("html",)).get_content().strip() == "<p>Thanks.</p>"
