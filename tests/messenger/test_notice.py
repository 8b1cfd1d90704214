"""send_notice: the one path for single messages builds, sends, and fails with the address named."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from bulletin.config import Settings, load_settings
from bulletin.errors import DeliveryError
from bulletin.messenger import MaildirTransport, Notice, send_notice
from tests.smtp_sink import SmtpSink, closed_port


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return load_settings(tmp_path, sending_domain="news.example.org", secret_keys=["k" * 32], **kw)


def test_a_notice_lands_with_its_threading_headers_and_the_bounce_envelope(tmp_path: Path) -> None:
    conf = _settings(tmp_path, outbox=str(tmp_path / "out"))
    mid = send_notice(conf, Notice(to="pat@example.org", subject="Re: hello", text="Thanks.\n",
                                   in_reply_to="<a@x.example>", references="<a@x.example>"))
    [path] = list((tmp_path / "out" / "new").iterdir())
    raw = path.read_bytes()
    assert raw.startswith(f"Return-Path: <{conf.bounce_local}@news.example.org>".encode())
    msg = email.message_from_bytes(raw.split(b"\r\n", 2)[2], policy=policy.SMTP)
    assert msg["Message-ID"] == mid and msg["To"] == "pat@example.org"
    assert msg["In-Reply-To"] == "<a@x.example>" and msg.get_content().strip() == "Thanks."


def test_a_refused_notice_is_a_delivery_error_naming_the_address(tmp_path: Path, sink: SmtpSink) -> None:
    sink.always_fail["hard@example.org"] = 550
    conf = _settings(tmp_path, transport="smtp", smtp_host=sink.host, smtp_port=sink.port)
    with pytest.raises(DeliveryError) as err:
        send_notice(conf, Notice(to="hard@example.org", subject="s", text="t"), what="confirmation mail")
    assert "confirmation mail refused: 550" in str(err.value) and "hard@example.org" in str(err.value)


def test_no_server_is_a_delivery_error_not_a_traceback(tmp_path: Path) -> None:
    with closed_port() as port, pytest.raises(DeliveryError) as err:
        conf = _settings(tmp_path, transport="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=2)
        send_notice(conf, Notice(to="pat@example.org", subject="s", text="t"), what="answer")
    assert "pat@example.org" in str(err.value)


def test_a_given_transport_stays_open_for_the_next_notice(tmp_path: Path) -> None:
    conf = _settings(tmp_path)
    outbox = MaildirTransport(tmp_path / "box")
    for who in ("a@example.org", "b@example.org"):
        send_notice(conf, Notice(to=who, subject="s", text="t"), transport=outbox)
    assert len(list((tmp_path / "box" / "new").iterdir())) == 2


@pytest.mark.parametrize("name", [
    "Shared Services Team, Northshire, Westshire and Eastshire Councils Partnership",  # long, ASCII, commas
    "Zoë O'Neil, MBE, Équipe des services partagés du Conseil de Northshire et Westshire",  # long, encoded
])
def test_from_and_reply_to_are_one_mailbox_however_long_the_name(tmp_path: Path, name: str) -> None:
    """The SMTP policy re-folded a long quoted name at its spaces and dropped the quotes, and its commas
    then made two or three mailboxes: a From DMARC receivers reject (review finding)."""
    from bulletin.messenger import format_address
    from bulletin.messenger.notice import simple_message

    conf = _settings(tmp_path)
    data, _ = simple_message(conf, to="pat@example.org", subject="Please confirm", text="Hello\n",
                             from_addr=format_address(name, "team@news.example.org"),
                             reply_to=format_address(name, "reply@news.example.org"))
    msg = email.message_from_bytes(data, policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in msg["From"].addresses] == [(name, "team@news.example.org")]
    assert [(a.display_name, a.addr_spec) for a in msg["Reply-To"].addresses] == [(name, "reply@news.example.org")]
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_a_from_that_is_not_one_address_is_refused_naming_the_field(tmp_path: Path) -> None:
    from bulletin.errors import AddressError
    from bulletin.messenger.notice import simple_message

    with pytest.raises(AddressError) as err:
        simple_message(_settings(tmp_path), to="pat@example.org", subject="s", text="t", from_addr="Team only")
    assert err.value.where == "From" and "Team only" in err.value.message
