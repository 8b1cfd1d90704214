"""Only authenticated evidence changes a subscription: each forged report kind next to its authenticated twin."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlmodel import select

from bulletin.audience.lifecycle import subscribe
from bulletin.db import session_scope
from bulletin.inbound import ingest
from bulletin.inbound.reading.ses import sns_signed_text
from bulletin.models import Evidence, Subscription
from tests.inbound.conftest import ISSUE_SUBJECT, World, arf, dsn


def _all_states(world: World) -> dict[int, set[str]]:
    with session_scope(world.engine) as session:
        out: dict[int, set[str]] = {}
        for s in session.exec(select(Subscription)).all():
            out.setdefault(s.subscriber_id, set()).add(s.state)
        return out


def _evidence(world: World, inbound_id: int) -> list[Evidence]:
    with session_scope(world.engine) as session:
        return list(session.exec(select(Evidence).where(Evidence.inbound_id == inbound_id)).all())


def _unsubscribe(world: World, sid: int) -> str:
    """The List-Unsubscribe mailto address of `sid`'s copy: carried only by the copy delivered to them."""
    return world.links.unsubscribe_mailto(sid, world.list_ids[0]).removeprefix("mailto:")


def test_dsn_without_token_changes_nothing_its_tokened_twin_bounces(world: World) -> None:
    sid = world.subscribers["ben@example.org"]
    before = _all_states(world)
    forged = ingest(world.engine, world.settings, dsn(to="postmaster@news.example.org", recipient="ben@example.org",
                                                      status="5.1.1"), source="test")
    assert forged.verified is False and _all_states(world) == before
    (ev,) = _evidence(world, forged.inbound_id)
    assert (ev.kind, ev.verified, ev.permanent, ev.subscriber_id, ev.auth) == (
        "bounce", False, True, sid, "nothing-of-ours-in-report")
    twin = dsn(to="postmaster@news.example.org", recipient="ben@example.org", status="5.1.1",
               original_message_id=world.links.message_id(sid, world.issue_id), message_id="<dsn2@mx.example.net>",
               unsubscribe=_unsubscribe(world, sid))
    result = ingest(world.engine, world.settings, twin, source="test")
    assert result.verified is True and result.bounces[0]["auth"] == "report-unsubscribe"
    assert result.issue_id == world.issue_id  # the issue comes from the Message-ID beside the token
    assert _all_states(world)[sid] == {"bounced"}


def test_report_carrying_one_subscribers_token_cannot_bounce_another(world: World) -> None:
    amina, ben = world.subscribers["amina@example.gov.uk"], world.subscribers["ben@example.org"]
    raw = dsn(to="postmaster@news.example.org", recipient="ben@example.org", status="5.1.1",
              original_message_id=world.links.message_id(amina, world.issue_id), unsubscribe=_unsubscribe(world, amina))
    result = ingest(world.engine, world.settings, raw, source="test")
    assert result.verified is False and result.bounces[0]["auth"] == "recipient-not-the-reports-subscriber"
    assert _all_states(world)[ben] == {"confirmed"} and _all_states(world)[amina] == {"confirmed"}


def test_hand_made_arf_changes_nothing_its_signed_twin_complains(world: World) -> None:
    sid = world.subscribers["ben@example.org"]
    before = _all_states(world)
    forged = ingest(world.engine, world.settings, arf("<made-up@news.example.org>"), source="test")
    assert (forged.classification, forged.verified) == ("complaint", False)
    assert _all_states(world) == before
    twin = arf(world.links.message_id(sid, world.issue_id), _unsubscribe(world, sid)).replace(
        b"arf-test-1@", b"arf-test-2@")
    result = ingest(world.engine, world.settings, twin, source="test")
    assert (result.classification, result.verified, result.subscriber_id) == ("complaint", True, sid)
    assert _all_states(world)[sid] == {"complained"}


@pytest.mark.parametrize("named", ["ben@example.org", None])
def test_what_a_reply_shows_others_cannot_make_a_complaint(world: World, named: str | None) -> None:
    """Ben replied with a colleague in Cc: the colleague saw Ben's reply address and our Message-ID
    (In-Reply-To). A report built from those two, naming Ben or nobody, changes nothing."""
    sid = world.subscribers["ben@example.org"]
    before = _all_states(world)
    raw = arf(world.links.message_id(sid, world.issue_id), world.links.reply_address(sid, world.issue_id))
    if named is None:
        raw = raw.replace(b"Original-Rcpt-To: ben@example.org\r\n", b"").replace(b"To: ben@example.org\r\n", b"")
    raw = raw.replace(b"To: bounces@news.example.org", b"To: " + world.links.reply_address(sid, world.issue_id).encode())
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.verified) == ("complaint", False)
    assert _all_states(world) == before
    evidence = _evidence(world, result.inbound_id)
    assert all(not e.verified for e in evidence)
    assert named is None or [e.auth for e in evidence] == ["only-values-a-reply-shows"]


def test_informal_spam_report_with_rfc822_headers_changes_nothing(world: World) -> None:
    before = _all_states(world)
    raw = ("From: abuse@isp.example.net\r\nTo: bounces@news.example.org\r\nSubject: Spam report\r\n"
           "Message-ID: <spam-1@isp.example.net>\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/mixed; boundary="S"\r\n\r\n--S\r\nContent-Type: text/plain\r\n\r\n'
           "Our customer ben@example.org reported the attached message as spam.\r\n\r\n--S\r\n"
           "Content-Type: text/rfc822-headers\r\n\r\nFrom: bulletin@news.example.org\r\nTo: ben@example.org\r\n"
           f"Subject: {ISSUE_SUBJECT}\r\nMessage-ID: <x@elsewhere>\r\n\r\n--S--\r\n").encode()
    result = ingest(world.engine, world.settings, raw, source="test")
    assert result.classification != "complaint" or result.verified is False
    assert _all_states(world) == before


@pytest.fixture(scope="module")
def sns_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


def _ses_mail(key: rsa.RSAPrivateKey | None, *, envelope_id: str) -> bytes:
    ses = {"notificationType": "Complaint",
           "complaint": {"complainedRecipients": [{"emailAddress": "carl@example.org"}],
                         "complaintFeedbackType": "abuse"},
           "mail": {"source": "ops@news.example.org", "messageId": "0100-ses"}}
    envelope = {"Type": "Notification", "MessageId": envelope_id, "TopicArn": "arn:aws:sns:eu-west-1:1:ses",
                "Message": json.dumps(ses), "Timestamp": "2025-01-06T09:00:00.000Z", "SignatureVersion": "2"}
    if key is not None:
        text = sns_signed_text(envelope)
        assert text is not None
        envelope["Signature"] = base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
    body = json.dumps(envelope) if key is not None else json.dumps(ses)
    return (f"From: no-reply@sns.amazonaws.com\r\nTo: ops@news.example.org\r\nSubject: AWS Notification Message\r\n"
            f"Message-ID: <{envelope_id}@sns.example>\r\nx-amz-sns-message-id: {envelope_id}\r\n"
            f"Content-Type: text/plain\r\n\r\n{body}\r\n").encode()


def test_unsigned_ses_json_changes_nothing_the_signed_twin_complains(
        world: World, sns_key: tuple[rsa.RSAPrivateKey, bytes], tmp_path: Path) -> None:
    key, pem = sns_key
    cert = tmp_path / "sns.pem"
    cert.write_bytes(pem)
    settings = world.settings.model_copy(update={"ses_sns_certificates": [cert]})
    sid = world.subscribers["carl@example.org"]
    before = _all_states(world)
    forged = ingest(world.engine, settings, _ses_mail(None, envelope_id="e1"), source="test")
    assert (forged.classification, forged.verified) == ("complaint", False)
    assert _all_states(world) == before
    no_cert = ingest(world.engine, world.settings, _ses_mail(key, envelope_id="e2"), source="test")
    assert no_cert.verified is False and _all_states(world) == before
    signed = ingest(world.engine, settings, _ses_mail(key, envelope_id="e3"), source="test")
    assert (signed.classification, signed.verified, signed.subscriber_id) == ("complaint", True, sid)
    assert signed.evidence[0]["auth"] == "ses-sns"
    assert _all_states(world)[sid] == {"complained"}


def _dsn_many(recipients: list[str], original_mid: str, unsubscribe: str = "mailto:x@elsewhere") -> bytes:
    blocks = "".join(f"Final-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" for r in recipients)
    return ("From: MAILER-DAEMON@mx.example.net\r\nTo: postmaster@news.example.org\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <many@mx.example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; mx.example.net\r\n\r\n{blocks}--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"From: bulletin@news.example.org\r\nMessage-ID: {original_mid}\r\n"
            f"List-Unsubscribe: <{unsubscribe}>\r\n\r\n--B--\r\n").encode()


def test_dsn_to_postmaster_naming_88_subscribers_bounces_nobody(world: World) -> None:
    with session_scope(world.engine) as session:
        many = [f"person{n}@example.net" for n in range(85)]
        for addr in many:
            subscribe(session, addr, world.list_ids, confirmed=True, source="cli", actor="test")
    named = [*many, "amina@example.gov.uk", "ben@example.org", "carl@example.org"]
    before = _all_states(world)
    result = ingest(world.engine, world.settings, _dsn_many(named, "<x@elsewhere>"), source="test")
    assert result.verified is False and len(result.bounces) == 88
    assert all(not b["verified"] for b in result.bounces)
    assert _all_states(world) == before
    # The same report carrying Ben's signed List-Unsubscribe address: only Ben bounces.
    ben = world.subscribers["ben@example.org"]
    twin = _dsn_many(named, world.links.message_id(ben, world.issue_id), _unsubscribe(world, ben)).replace(
        b"<many@", b"<many2@")
    again = ingest(world.engine, world.settings, twin, source="test")
    assert sum(b["verified"] for b in again.bounces) == 1
    after = _all_states(world)
    assert after[ben] == {"bounced"}
    assert {k: v for k, v in after.items() if k != ben} == {k: v for k, v in before.items() if k != ben}


def test_unreadable_sns_certificate_setting_is_a_clear_error(world: World, tmp_path: Path) -> None:
    from bulletin.errors import ConfigError

    settings = world.settings.model_copy(update={"ses_sns_certificates": [tmp_path / "missing.pem"]})
    with pytest.raises(ConfigError, match="missing.pem"):
        ingest(world.engine, settings, _ses_mail(None, envelope_id="e9"), source="test")


def test_a_persons_data_export_shows_the_signals_naming_them_trusted_or_not(world: World) -> None:
    """Subject access: a forged report that changed nothing is still data held about the person."""
    from bulletin.audience.access import subject_access

    sid = world.subscribers["ben@example.org"]
    forged = ingest(world.engine, world.settings, dsn(to="postmaster@news.example.org", recipient="ben@example.org",
                                                      status="5.1.1"), source="test")
    with session_scope(world.engine) as session:
        held = subject_access(session, sid)["evidence"]
        others = subject_access(session, world.subscribers["amina@example.gov.uk"])["evidence"]
    assert [(e["kind"], e["verified"], e["auth"], e["address"]) for e in held] == [
        ("bounce", False, "nothing-of-ours-in-report", "ben@example.org")]
    assert forged.verified is False and others == []
