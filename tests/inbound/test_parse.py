"""Tolerant parsing: line ends, charsets, encoded words, attachments, Message-IDs."""

from __future__ import annotations

from bulletin.inbound.acting.store import message_id_from_raw
from bulletin.inbound.reading.parse import (
    attachments,
    body_text,
    header,
    parse_bytes,
    sender,
)

BASE = b"From: =?utf-8?q?Zo=C3=AB?= <ZOE@Example.ORG>\nSubject: =?iso-8859-1?q?R=E9union?=\nMessage-ID: <a@b>\n"


def test_cr_only_line_ends_parse_like_lf() -> None:
    raw = (BASE + b"\nHello\nWorld\n").replace(b"\n", b"\r")
    msg = parse_bytes(raw)
    assert header(msg, "Subject") == "Réunion" and body_text(msg) == "Hello\nWorld\n"


def test_sender_is_decoded_and_lowercased() -> None:
    assert sender(parse_bytes(BASE + b"\nx\n")) == ("Zoë", "zoe@example.org")


def test_unknown_charset_falls_back_instead_of_raising() -> None:
    raw = BASE + b"Content-Type: text/plain; charset=x-no-such-charset\n\ncaf\xc3\xa9\n"
    assert body_text(parse_bytes(raw)) == "café\n"


def test_broken_encoded_word_keeps_raw_text() -> None:
    raw = b"Subject: =?utf-8?b?not-base64?=\n\nx\n"
    assert header(parse_bytes(raw), "Subject") != ""


def test_html_only_reply_becomes_text() -> None:
    raw = BASE + b"Content-Type: text/html\n\n<p>Yes &amp; no</p><p>second</p>\n"
    assert body_text(parse_bytes(raw)).split() == ["Yes", "&", "no", "second"]


def test_attachments_are_listed_with_size() -> None:
    raw = BASE + (b'Content-Type: multipart/mixed; boundary="X"\n\n--X\nContent-Type: text/plain\n\nSee file.\n'
                  b'--X\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="plan.pdf"\n'
                  b"Content-Transfer-Encoding: base64\n\nJVBERi0=\n--X--\n")
    msg = parse_bytes(raw)
    assert [a.as_dict() for a in attachments(msg)] == [
        {"filename": "plan.pdf", "content_type": "application/pdf", "size": 5}]
    assert body_text(msg).strip() == "See file."


def test_missing_or_absurd_message_id_is_derived_from_content() -> None:
    raw = b"Subject: x\n\nbody\n"
    assert message_id_from_raw(raw) == message_id_from_raw(raw) != message_id_from_raw(raw + b"!")
    long = b"Message-ID: <" + b"a" * 1000 + b"@x>\n\nbody\n"
    assert message_id_from_raw(long).startswith("<sha256.")


def test_message_id_is_read_from_folded_header_and_cr_line_ends() -> None:
    raw = b"Subject: x\rMessage-Id:\r <folded@example.org>\r\rbody: <not@this>\r"
    assert message_id_from_raw(raw) == "<folded@example.org>"


def test_truncated_multipart_does_not_raise() -> None:
    raw = BASE + b'Content-Type: multipart/mixed; boundary="X"\n\n--X\nContent-Type: text/plain\n\nhalf'
    assert body_text(parse_bytes(raw)).startswith("half")


def _address_values(count: int, seed: int) -> list[str]:
    """Header values built from the pieces that make address parsing hard, everyday shapes among them."""
    import random

    rng = random.Random(seed)
    pieces = ["a", "Bob", "x.y", "ü", "@", ".", ",", " ", "\t", "<", ">", '"', "\\", "(", ")", ":", ";", "[", "]",
              "ex.org", "a@b.c", "<a@b.c>", "Jo Ann", '"Doe, J"', "!#$%&'*+/=?^_`{|}~-", "\u00a0", "=?utf-8?q?x?="]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(count)]


def test_plain_address_list_agrees_with_the_stdlib_parser() -> None:
    from email.utils import getaddresses, parseaddr

    from bulletin.inbound.reading.parse import plain_address_list

    everyday = ["a@b.c", "<a@b.c>", "Jo Ann <a.b@c.d>", '"Doe, J" <x@y.z>, q@r.s', "  a@b.c ,\t<d@e.f>  ",
                "Zoë <zoe@example.org>", '"" <a@b.c>', "x!y@z_w.org"]
    values = everyday + _address_values(20000, 11)
    taken = 0
    for value in values:
        plain = plain_address_list([value])
        if plain is None:
            assert value not in everyday
            continue
        taken += 1
        assert plain == getaddresses([value]), value
        if len(plain) == 1:
            assert plain[0] == parseaddr(value), value
    assert taken > 100
    pairs = [values[i:i + 2] for i in range(0, 4000, 2)]
    for pair in pairs:  # several header instances are read as one list
        plain = plain_address_list(pair)
        assert plain is None or plain == getaddresses(pair), pair


def test_the_parts_cache_lets_a_message_go() -> None:
    import gc
    import weakref

    from bulletin.inbound.reading.reports import DSN_TYPES, find_parts, report_parts, typed_parts

    msg = parse_bytes(b"Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n"
                      b"--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b.c\n--b--\n")
    assert [c for _, c in typed_parts(msg)][:2] == ["multipart/report", "text/plain"]
    assert len(report_parts(msg, DSN_TYPES)) == 1 and find_parts(msg, ("multipart/report",)) == [msg]
    gone = weakref.ref(msg)
    del msg
    gc.collect()
    assert gone() is None
