"""Review h30: the quoted-printable bodies of commit 4edd1b5 ("no quoted-printable line over 76"), attacked.

These guard what held: no failure was found (see the review report).
"""

from __future__ import annotations

import binascii
import dataclasses
import email
import quopri
import random
from email import policy
from pathlib import Path

import dkim
import pytest

from bulletin.config import Settings, load_settings
from bulletin.delivery.message import MessageSkeleton, RecipientRow, _Body, qp, qp_value
from bulletin.messenger.smtp import dot_stuff
from bulletin.render.compiled import Template, marker
from tests.delivery.conftest import make_compiled
from tests.delivery.test_message import LIST, _dkim_key

NASTY = ["a", "b", ".", "..", "=", "==", " ", "\t", "\n", "\r\n", "\r", "é", "😀", "\u2028", "\x85", "\x0c",
         "\x00", "=20", "=\n", ". ", " \n", "\t\n", "-", "~"]


VALUE = [c for c in NASTY if not any(ch < " " or ch == "\x7f" for ch in c)]  # clean_header leaves no controls


def _text(rng: random.Random, n: int, alphabet: list[str] = NASTY) -> str:
    out = ""
    while len(out) < n:
        out += rng.choice(alphabet) if rng.random() < 0.4 else "x"
    return out[:n]


def _lines_ok(encoded: bytes) -> None:
    lines = encoded.split(b"\r\n")
    assert max(len(line) for line in lines) <= 76, encoded
    assert not any(line.startswith(b".") for line in lines), encoded
    assert not any(line.endswith((b" ", b"\t")) for line in lines), encoded  # trailing blanks: stripped in transit
    assert b"\r" not in encoded.replace(b"\r\n", b"") and b"\n" not in encoded.replace(b"\r\n", b"")


def test_held_qp_of_boundary_sized_nasty_text() -> None:
    rng = random.Random(3030)
    for _ in range(4000):
        text = _text(rng, rng.choice([0, 1, 2, 73, 74, 75, 76, 77, 78, 150, 151, 152, 153, 230]))
        for last in (75, 76):
            encoded = qp(text, last=last)
            _lines_ok(encoded)
            assert len(encoded.rsplit(b"\r\n", 1)[-1]) <= last
            want = text.replace("\r\n", "\n").replace("\r", "\n")
            assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode() == want
            assert binascii.a2b_qp(encoded).decode().replace("\r\n", "\n") == want


def test_held_qp_value_is_qp_at_75_for_values_of_every_length() -> None:
    rng = random.Random(75)
    values = ["", ".", "=", " ", "a ", " a", "a" * 74, "a" * 75, "a" * 76, "a" * 77, "." + "a" * 74, "a" * 74 + " ",
              "https://news.example.org/u/" + "A" * 48, "x" * 74 + "=", "~" * 75]
    values += [_text(rng, rng.choice([1, 2, 74, 75, 76, 77]), VALUE) for _ in range(5000)]
    values += [_text(rng, rng.choice([1, 2, 74, 75, 76, 77])) for _ in range(2000)]
    for value in values:
        assert qp_value(value) == qp(value, last=75), value


def test_held_bodies_around_slots_decode_to_the_fill() -> None:
    rng = random.Random(2046)
    for _ in range(800):
        chunks = [_text(rng, rng.choice([0, 1, 73, 74, 75, 76, 77, 151, 152])) for _ in range(4)]
        template = Template.split(chunks[0] + marker("name") + chunks[1] + marker("organisation") + chunks[2]
                                  + marker("name") + chunks[3], escape=False)
        values = {"name": _text(rng, rng.choice([0, 1, 74, 75, 76, 77]), VALUE),
                  "organisation": rng.choice([".", "", "x" * 75, "." + "y" * 74, "z" * 74 + "."])}
        out: list[bytes] = []
        _Body.of(template).fill(out, values, {})
        body = b"".join(out)
        _lines_ok(body)
        norm = {k: v.replace("\r\n", "\n").replace("\r", "\n") for k, v in values.items()}
        want = Template(tuple(c.replace("\r\n", "\n").replace("\r", "\n") for c in template.chunks),
                        template.slots, escape=False).fill(norm)  # each piece's line ends, as qp sees them
        assert quopri.decodestring(body.replace(b"\r\n", b"\n")).decode() == want


@pytest.fixture
def conf(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, public_base_url="https://news.example.org", sending_domain="news.example.org")


@pytest.mark.parametrize("name", [".", ".Dot", "x" * 59 + ".", "é" * 40, "😀 " * 30 + ".", "= =", "a\tb",
                                  "Zoë O'Neil, MBE", " . "])
def test_held_signed_messages_verify_parse_and_need_no_dot_stuffing(conf: Settings, tmp_path: Path,
                                                                    name: str) -> None:
    key, record = _dkim_key(tmp_path)
    signing = conf.model_copy(update={"dkim_key_path": key, "dkim_selector": "sel"})
    extra = "<p>" + "x" * 75 + ". dot after a soft break</p>\n.line\n" + "=" * 100 + "\t\n" + "😀" * 30
    compiled = make_compiled(extra_html=extra)
    compiled = dataclasses.replace(compiled, text=Template.split(
        compiled.text.fill({s: marker(s) for s in compiled.text.slots}) + extra, escape=False))
    sk = MessageSkeleton(signing, compiled, LIST, 42)
    row = RecipientRow(7, "ann@example.org", name)
    out = sk.build(row)
    assert out.dot_free and dot_stuff(out.data) == out.data
    head, body = out.data.split(b"\r\n\r\n", 1)
    _lines_ok(body)
    assert dkim.verify(out.data, dnsfunc=lambda n, timeout=5: record)
    msg = email.message_from_bytes(out.data, policy=policy.default)
    filled = sk.compiled.fill(sk.recipient(row))
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == filled.text  # type: ignore[union-attr]
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == filled.html  # type: ignore[union-attr]
