"""The per-recipient message from bytes, checked with the standard library parser, and simple_message."""

from __future__ import annotations

import base64
import dataclasses
import email
import re
import subprocess
import time
from email import policy
from email.utils import getaddresses
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
    qp,
    qp_value,
)
from bulletin.errors import DeliveryError
from bulletin.messenger import simple_message
from tests.delivery.conftest import make_compiled

LIST = ListIdentity(id=3, slug="shared-services", name="Shared Services e-bulletin",
                    from_name="Équipe Shared Services", from_address="bulletin@shared-services.example.gov.uk",
                    organisation="Northshire Shared Services Partnership",
                    postal_address="14 Guildhall Walk, Wellsbury, WB1 4QT, United Kingdom")


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
    filled = sk.compiled.fill(sk.recipient(RecipientRow(7, "ann@example.org", "Ann Example")))
    assert msg.get_content_type() == "multipart/alternative"
    # Text parts are canonical CRLF on the wire; the parser hands the CRLF back.
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == filled.text
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == filled.html
    assert str(msg["To"]) == "Ann Example <ann@example.org>"
    assert msg["From"].addresses[0].addr_spec == "bulletin@shared-services.example.gov.uk"
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
    assert reply.display_name == LIST.display_name and links.parse_reply_address(reply.addr_spec) == (7, 42)
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert https == links.for_message(7, 3, 42).unsubscribe_url and https.startswith("https://news.example.org/unsubscribe/")
    assert mailto == links.for_message(7, 3, 42).unsubscribe_mailto


def test_non_ascii_names_are_encoded_and_decode_back(conf: Settings) -> None:
    out = MessageSkeleton(conf, make_compiled(), LIST, 1).build(RecipientRow(1, "zoe@example.org", "Zoë Ångström-Łukasz"))
    head = out.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert _parse(out.data)["To"].addresses[0].display_name == "Zoë Ångström-Łukasz"


NAMES = [
    "Zoë O'Neil, MBE",                      # non-ASCII, quote and comma: the CPython 121284 case
    "O'Neil, Zoe",                         # comma only
    'Zoe "Zed" O\'Neil',                    # double quotes
    "Dr. J. R. Smith (Finance); Wellsbury",  # other specials
    "Łukasz Żółć",                         # non-ASCII only
    "Åsa Öberg, Ph.D. \"Head\" of ICT, Wellsbury & Exton Councils' Shared Services",  # all, and long
]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_with_commas_quotes_or_non_ascii_is_one_mailbox(conf: Settings, name: str) -> None:
    sk = MessageSkeleton(conf, make_compiled(), dataclasses.replace(LIST, from_name=name, organisation=""), 1)
    out = sk.build(RecipientRow(1, "zoe@example.org", name))
    assert out.data.split(b"\r\n\r\n", 1)[0].isascii()
    msg = _parse(out.data)
    for field, addr in (("To", "zoe@example.org"), ("From", LIST.from_address)):
        [mailbox] = msg[field].addresses
        assert (mailbox.display_name, mailbox.addr_spec) == (name, addr)
        assert getaddresses([msg[field]]) == [(name, addr)]  # the older parser agrees
    assert msg["Reply-To"].addresses[0].display_name == name


def test_the_from_name_names_the_organisation(conf: Settings) -> None:
    out = MessageSkeleton(conf, make_compiled(), LIST, 1).build(RecipientRow(1, "a@example.org", "A"))
    [mailbox] = _parse(out.data)["From"].addresses
    assert mailbox.display_name == "Équipe Shared Services, Northshire Shared Services Partnership"


def test_the_footers_carry_the_lists_sender_and_postal_address(conf: Settings) -> None:
    from tests.delivery.conftest import footer_compiled

    out = MessageSkeleton(conf, footer_compiled(), LIST, 1).build(RecipientRow(1, "a@example.org", "A"))
    msg = _parse(out.data)
    for part in (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()):
        assert "Northshire Shared Services Partnership" in part and "Shared Services e-bulletin" in part
        assert "14 Guildhall Walk, Wellsbury, WB1 4QT" in part and "BULLETINSLOT" not in part


def test_date_has_a_numeric_utc_zone_and_feedback_id_names_issue_list_and_domain(conf: Settings) -> None:
    msg = _parse(MessageSkeleton(conf, make_compiled(), LIST, 1).build(RecipientRow(1, "a@example.org", "A")).data)
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", str(msg["Date"]))
    assert abs(msg["Date"].datetime.timestamp() - time.time()) < 5
    assert msg["Feedback-ID"] == "2026-05-test:shared-services:bulletin:news.example.org"


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
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post", "feedback-id"} <= signed
    listed = re.search(r"h=([^;]+)", sig).group(1).lower().split(":")  # type: ignore[union-attr]
    for name in ("from", "to", "subject", "date", "reply-to", "message-id", "list-id", "list-unsubscribe",
                 "list-unsubscribe-post"):
        assert listed.count(name) == 2, name  # over-signed, RFC 6376 section 8.15
    assert "c=relaxed/relaxed" in sig
    assert "d=shared-services.example.gov.uk" in sig

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel._domainkey.shared-services.example.gov.uk."
        return record

    assert dkim.verify(out.data, dnsfunc=dns)
    tampered = out.data.replace(b"Subject: Shared", b"Subject: Spoofed", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)
    # A second Subject or List-Unsubscribe added above the signed one: the over-signing catches it.
    sig_end = out.data.index(b"\r\n", out.data.index(b"\r\nFrom:") - 1)
    for extra in (b"Subject: Spoofed\r\n", b"List-Unsubscribe: <https://evil.example.net/>\r\n"):
        added = out.data[:sig_end + 2] + extra + out.data[sig_end + 2:]
        assert _parse(added).get_all(extra.split(b":")[0].decode())[0] != ""
        assert not dkim.verify(added, dnsfunc=dns), extra
    # Relaxed header canonicalisation: a relay refolding whitespace does not break it.
    assert dkim.verify(out.data.replace(b"Precedence: bulk", b"Precedence:   bulk"), dnsfunc=dns)


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


def test_no_line_of_a_built_message_starts_with_a_dot_so_the_transport_stuffs_nothing(conf: Settings,
                                                                                      tmp_path: Path) -> None:
    """A dot opening a line (written, or made by a soft break before ". ") is sent as =2E:
    the message reads the same, and the SMTP dot-stuffing pass has nothing to double."""
    from bulletin.messenger.smtp import dot_stuff

    compiled = make_compiled(extra_html="<p>" + "x" * 75 + ". After a soft break</p>\n.starts a line")
    sk = MessageSkeleton(conf, compiled, LIST, 42)
    row = RecipientRow(7, "ann@example.org", ".Dot Name")
    out = sk.build(row)
    assert b"\r\n." not in out.data and not out.data.startswith(b".")
    assert out.dot_free and dot_stuff(out.data) == out.data
    key, _ = _dkim_key(tmp_path)
    signed = MessageSkeleton(conf.model_copy(update={"dkim_key_path": key, "dkim_selector": "sel"}), compiled,
                             LIST, 42).build(row)
    assert signed.dot_free and signed.data.startswith(b"DKIM-Signature:") and b"\r\n." not in signed.data
    filled = sk.compiled.fill(sk.recipient(row))
    assert ".starts a line" in filled.html and "x. After" in filled.html
    assert _parse(out.data).get_body(("html",)).get_content().replace("\r\n", "\n") == filled.html


def test_quoted_printable_escapes_every_leading_dot_and_keeps_lines_within_76() -> None:
    import binascii
    import quopri
    import random

    rng = random.Random(18)
    over = 0
    for _ in range(3000):
        text = "".join(rng.choice("ab. =\té\n..") for _ in range(rng.randint(1, 400)))
        encoded = qp(text)
        lines = encoded.split(b"\r\n")
        assert not any(line.startswith(b".") for line in lines), encoded
        assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode() == text
        assert max(len(line) for line in lines) <= 76, encoded  # RFC 2045 6.7 (5)
        if max(len(line) for line in binascii.b2a_qp(text.encode(), istext=True).split(b"\n")) > 76:
            over += 1
    assert over, "binascii writes 77-78 character lines for some of these texts: the case is exercised"


def test_a_slot_value_skips_the_encoder_only_where_the_encoder_would_change_nothing() -> None:
    import random

    rng = random.Random(76)
    values = ["https://news.example.org/unsubscribe/1a-2b-3c-0123456789abcdef0123", "Ann", ".Ann", "a=b",
              "trailing ", "tab\t", "é", "a" * 76, "a" * 77, "", " lead", "x\ny"]
    values += ["".join(rng.choice("ab .=\t~!é-/<>") for _ in range(rng.choice([1, 2, 5, 74, 75, 76, 77, 80])))
               for _ in range(20000)]
    for value in values:
        encoded = qp_value(value)
        assert encoded == qp(value, last=75), value
        assert len(encoded.rsplit(b"\r\n", 1)[-1]) <= 75, value  # a soft break's "=" follows it


def test_a_body_keeps_every_line_within_76_around_its_slots() -> None:
    """A template chunk or a slot value whose last line is 76 characters, followed by the soft break
    around a slot, made a 77-character line; random chunks and values, decoded back exactly."""
    import quopri
    import random

    from bulletin.delivery.message import _Body
    from bulletin.render.compiled import Template, marker

    rng = random.Random(2045)
    for _ in range(600):
        def text(n: int) -> str:
            return "".join(rng.choice("ab .=\t~é") for _ in range(n))
        chunks = [text(rng.choice([0, 1, 74, 75, 76, 77, 150, 151, 152])) for _ in range(3)]
        template = Template.split(chunks[0] + marker("name") + chunks[1] + marker("organisation") + chunks[2],
                                  escape=False)
        values = {"name": text(rng.choice([1, 74, 75, 76, 77])), "organisation": "x" * rng.choice([74, 75, 76])}
        out: list[bytes] = []
        _Body.of(template).fill(out, values, {})
        body = b"".join(out)
        assert max(len(line) for line in body.split(b"\r\n")) <= 76, body
        assert quopri.decodestring(body.replace(b"\r\n", b"\n")).decode() == template.fill(values).replace("\r", "")


def test_the_to_header_of_a_plain_name_is_what_formataddr_writes() -> None:
    import random
    from email.utils import formataddr

    from bulletin.delivery.message import _to_header

    rng = random.Random(5)
    names = ["Ann Example", "O'Neil", "J. Smith", "Jo_Smith-Jones", "", "a" * 59, "a" * 60, "Zoë", "x, y"]
    names += ["".join(rng.choice("Ab9 .'_-") for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    for name in names:
        header = _to_header(name, "r@example.org")
        parsed = _parse(header + b"\r\n")["To"].addresses[0]
        assert parsed.addr_spec == "r@example.org", name
        assert " ".join(parsed.display_name.split()) == " ".join(name.split()), name
        if name and name.strip() == name and all(c.isascii() for c in name) and len(name) < 60:
            assert header == b"To: " + formataddr((name, "r@example.org")).encode() + b"\r\n", name
