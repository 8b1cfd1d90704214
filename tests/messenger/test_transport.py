"""Transports: the Maildir outbox and the SMTP pool, against real folders and real servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bulletin.config import load_settings
from bulletin.errors import DeliveryError
from bulletin.messenger.maildir import MaildirTransport, maildir_name
from bulletin.messenger.smtp import SMTPConfig, SMTPPool
from bulletin.messenger.transport import make_transport
from tests.smtp_sink import SmtpSink, closed_port, free_port, smtp_sink


def _msg(mid: str, body: str = "hello") -> bytes:
    return (f"From: a@example.org\r\nTo: b@example.org\r\nMessage-ID: {mid}\r\nSubject: t\r\n\r\n{body}\r\n").encode()


def test_maildir_writes_into_new_via_tmp_and_a_resend_replaces_the_file(tmp_path: Path) -> None:
    outbox = MaildirTransport(tmp_path / "outbox")
    first = outbox.send("bounces+x@d.example", ["b@example.org"], _msg("<b.1-2-abc@d.example>"), "<b.1-2-abc@d.example>")
    again = outbox.send("bounces+x@d.example", ["b@example.org"], _msg("<b.1-2-abc@d.example>", "v2"), "<b.1-2-abc@d.example>")
    assert first.ok and again.ok
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert [f.name for f in files] == ["b.1-2-abc@d.example"]
    assert not list((tmp_path / "outbox" / "tmp").iterdir())
    data = files[0].read_bytes()
    assert data.startswith(b"Return-Path: <bounces+x@d.example>\r\nX-Original-To: b@example.org\r\n")
    assert data.endswith(b"v2\r\n")


def test_maildir_names_cannot_escape_the_folder() -> None:
    assert maildir_name("<../../etc/passwd@x>") == "_._.._etc_passwd@x"
    assert "/" not in maildir_name("<a/b@c>")
    with pytest.raises(DeliveryError, match="Message-ID"):
        maildir_name("<>")


def test_a_maildir_that_cannot_be_written_is_a_temporary_failure(tmp_path: Path) -> None:
    outbox = MaildirTransport(tmp_path / "outbox")
    shutil.rmtree(tmp_path / "outbox" / "new")
    (tmp_path / "outbox" / "new").write_text("not a folder")
    result = outbox.send("a@x.example", ["b@example.org"], _msg("<m@x>"), "<m@x>")
    assert not result.ok and not result.permanent and "outbox" in result.detail


def test_make_transport_follows_the_settings(tmp_path: Path) -> None:
    assert isinstance(make_transport(load_settings(tmp_path)), MaildirTransport)
    pool = make_transport(load_settings(tmp_path, transport="smtp", smtp_connections=3))
    assert isinstance(pool, SMTPPool) and pool.concurrency == 3


def _pool(sink: SmtpSink, connections: int = 2) -> SMTPPool:
    return SMTPPool(SMTPConfig(sink.host, sink.port, timeout=10), connections=connections)


def test_the_pool_reuses_its_connections_across_messages(sink: SmtpSink) -> None:
    pool = _pool(sink, 2)
    for i in range(12):
        assert pool.send("bounces@x.example", [f"r{i}@example.org"], _msg(f"<m{i}@x>"), f"<m{i}@x>").ok
    pool.close()
    assert sink.count() == 12 and sink.connections == 1  # one thread: the same connection each time


def test_a_dropped_connection_is_reopened_and_the_message_still_goes_once(sink: SmtpSink) -> None:
    sink.drop_every = 3
    pool = _pool(sink, 1)
    results = [pool.send("b@x.example", [f"r{i}@example.org"], _msg(f"<m{i}@x>"), f"<m{i}@x>") for i in range(10)]
    pool.close()
    assert all(r.ok for r in results)
    assert sink.drops >= 3 and sink.copies() == {f"r{i}@example.org": 1 for i in range(10)}


def test_4xx_is_temporary_and_5xx_is_permanent(sink: SmtpSink) -> None:
    sink.temp_fail["soft@example.org"] = 1
    sink.always_fail["hard@example.org"] = 550
    pool = _pool(sink, 1)
    soft = pool.send("b@x.example", ["soft@example.org"], _msg("<s@x>"), "<s@x>")
    hard = pool.send("b@x.example", ["hard@example.org"], _msg("<h@x>"), "<h@x>")
    after = pool.send("b@x.example", ["ok@example.org"], _msg("<o@x>"), "<o@x>")
    pool.close()
    assert (soft.ok, soft.code, soft.permanent) == (False, 450, False)
    assert (hard.ok, hard.code, hard.permanent) == (False, 550, True)
    assert after.ok and sink.copies() == {"ok@example.org": 1}


def test_no_server_is_a_temporary_failure() -> None:
    with closed_port() as port:
        pool = SMTPPool(SMTPConfig("127.0.0.1", port, timeout=2), connections=1)
        result = pool.send("b@x.example", ["r@example.org"], _msg("<m@x>"), "<m@x>")
    assert not result.ok and not result.permanent and result.code == 0


def test_lines_starting_with_a_dot_survive_the_smtp_transaction(sink: SmtpSink) -> None:
    pool = _pool(sink, 1)
    body = "first\r\n.hidden line\r\n..two dots\r\n."
    assert pool.send("b@x.example", ["r@example.org"], _msg("<d@x>", body), "<d@x>").ok
    pool.close()
    assert sink.received[0].data.endswith(body.encode() + b"\r\n")


def test_a_bulk_message_with_leading_dots_arrives_whole_though_the_transport_does_not_look(
        sink: SmtpSink, tmp_path: Path) -> None:
    """The builder writes a line-leading dot as =2E and says so (`dot_free`): the relay receives the
    very bytes built, and the reader the very text, dots included."""
    import email
    from email import policy

    from bulletin.config import load_settings
    from bulletin.delivery.message import ListIdentity, MessageSkeleton, RecipientRow
    from tests.delivery.conftest import make_compiled

    conf = load_settings(tmp_path, public_base_url="https://news.example.org", sending_domain="news.example.org")
    compiled = make_compiled(extra_html="\n.a line of its own\n..two dots\n.")
    sk = MessageSkeleton(conf, compiled, ListIdentity(1, "l", "List", "Team", "team@example.org"), 1)
    row = RecipientRow(1, "r@example.org", ".Dot")
    out = sk.build(row)
    pool = _pool(sink, 1)
    assert pool.send(out.envelope_from, [out.recipient], out.data, out.message_id, dot_free=out.dot_free).ok
    pool.close()
    received = sink.received[0].data
    assert received.endswith(out.data)
    html = email.message_from_bytes(received, policy=policy.default).get_body(("html",)).get_content()
    assert html.replace("\r\n", "\n") == sk.compiled.fill(sk.recipient(row)).html
    assert "\n.a line of its own\n..two dots\n." in html.replace("\r\n", "\n")


@pytest.fixture
def postfix_sink():  # type: ignore[no-untyped-def]
    """Postfix's smtp-sink, which (unlike aiosmtpd) offers PIPELINING; -f RCPT makes it refuse RCPT with 5xx."""
    if not Path("/usr/sbin/smtp-sink").exists():
        pytest.skip("postfix's smtp-sink is not installed")
    dump = Path(tempfile.mkdtemp(prefix="bulletin-sink-"))  # outside pytest's 0700 tree: it runs as nobody
    os.chmod(dump, 0o777)
    procs = []

    def start(*flags: str) -> int:
        """A new sink on a port of its own (the next port number may be anyone's), once it accepts."""
        import socket

        port = free_port()
        p = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", "-d", f"{dump}/%M.", *flags,
                              f"127.0.0.1:{port}", "16"])
        procs.append(p)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                if p.poll() is not None:
                    raise RuntimeError(f"smtp-sink on port {port} exited with {p.returncode}") from None
                time.sleep(0.02)
        raise RuntimeError(f"smtp-sink on port {port} did not start listening")

    yield start, dump
    for p in procs:
        p.terminate()
        p.wait()
    shutil.rmtree(dump, ignore_errors=True)


def _wait_for_files(folder: Path, count: int, tries: int = 100) -> None:
    import time

    for _ in range(tries):
        if len(list(folder.iterdir())) >= count:
            return
        time.sleep(0.05)


def test_pipelined_transactions_against_postfix_smtp_sink(postfix_sink) -> None:  # type: ignore[no-untyped-def]
    start, dump = postfix_sink
    ok_port = start()
    pool = SMTPPool(SMTPConfig("127.0.0.1", ok_port, timeout=10), connections=1)
    assert all(pool.send("b@x.example", [f"r{i}@example.org"], _msg(f"<p{i}@x>", ".dot\r\nend"), f"<p{i}@x>").ok
               for i in range(5))
    pool.close()
    _wait_for_files(dump, 5)  # smtp-sink writes its dump files after it has answered
    dumped = sorted(p.read_bytes() for p in dump.iterdir())
    assert len(dumped) == 5 and all(b"\n\n.dot\nend\n" in d for d in dumped)  # it stores LF
    refuse_port = start("-f", "RCPT")
    pool = SMTPPool(SMTPConfig("127.0.0.1", refuse_port, timeout=10), connections=1)
    refused = pool.send("b@x.example", ["r@example.org"], _msg("<q@x>"), "<q@x>")
    pool.close()
    assert not refused.ok and refused.permanent and 500 <= refused.code < 600
    assert len(list(dump.iterdir())) == 5


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that the client trusts through SSL_CERT_FILE."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_login_are_used_when_configured(certificate, security: str) -> None:  # type: ignore[no-untyped-def]
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    logins: list[bytes] = []

    def authenticator(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        if ok:
            logins.append(data.login)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    options: dict[str, object] = {"authenticator": authenticator, "auth_required": True}
    if security == "starttls":
        options.update(tls_context=server_ctx, require_starttls=True)
    else:  # aiosmtpd cannot tell implicit TLS from plain text, so it must be told AUTH is fine
        options.update(ssl_context=server_ctx, auth_require_tls=False)
    with smtp_sink(server_options=options) as sink:
        good = SMTPPool(SMTPConfig(sink.host, sink.port, security=security, username="editor",
                                   password="s3cret", timeout=10), connections=1)
        assert good.send("b@x.example", ["r@example.org"], _msg("<t@x>"), "<t@x>").ok
        good.close()
        bad = SMTPPool(SMTPConfig(sink.host, sink.port, security=security, username="editor",
                                  password="wrong", timeout=10), connections=1)
        refused = bad.send("b@x.example", ["r@example.org"], _msg("<u@x>"), "<u@x>")
        assert (refused.ok, refused.stage, refused.kind, refused.fatal) == (False, "auth", "transport", True)
        assert refused.reason.startswith("relay refused AUTH: 535") and "login as 'editor'" in refused.reason
    assert logins == [b"editor"] and sink.copies() == {"r@example.org": 1}


def test_a_server_without_starttls_is_a_settings_error_not_a_retry(sink: SmtpSink) -> None:
    pool = SMTPPool(SMTPConfig(sink.host, sink.port, security="starttls", timeout=5), connections=1)
    result = pool.send("b@x.example", ["r@example.org"], _msg("<n@x>"), "<n@x>")
    assert (result.ok, result.stage, result.kind, result.fatal) == (False, "starttls", "transport", True)
    assert "smtp_security" in result.detail and sink.count() == 0


def test_the_rate_limit_spaces_messages_evenly_and_zero_means_unlimited() -> None:
    from bulletin.messenger.smtp import RateLimiter

    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # a fake clock: no real waiting, no timed assertion
        slept.append(round(seconds, 6))
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle time is not saved up into a burst
    limiter.wait()
    limiter.wait()
    assert slept[-1] == 0.25 and len(slept) == 5
    unlimited = RateLimiter(0.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(100):
        unlimited.wait()
    assert len(slept) == 5


def test_dot_stuffing_doubles_every_dot_that_starts_a_line_and_nothing_else():
    import random

    from bulletin.messenger.smtp import dot_stuff

    rng = random.Random(7)
    cases = [b"", b"no dots", b"\r\n.", b"a\r\n.b\r\n..c\r\n.", b"\r\n\r\n.\r\n.", b"x.\r\ny"]
    cases += [bytes(rng.choice(b"\r\n.a") for _ in range(rng.randint(0, 40))) for _ in range(500)]
    for data in cases:
        assert dot_stuff(data) == data.replace(b"\r\n.", b"\r\n.."), data


def test_the_moved_names_still_import_from_transport():
    from bulletin.messenger import maildir, result, smtp, transport

    for module, names in ((maildir, ["MaildirTransport", "maildir_name"]), (result, ["SendResult"]),
                          (smtp, ["RateLimiter", "SMTPConfig", "SMTPConnection", "SMTPPool", "StageFailure",
                                  "dot_stuff", "transaction"])):
        for name in names:
            assert getattr(transport, name) is getattr(module, name), name
