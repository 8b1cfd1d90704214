"""Complaints need an ARF part or a verified SES notice; reports expose what they carry of our identity."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from bulletin.audience.links import Links
from bulletin.config import load_settings
from bulletin.inbound.reading.addresses import read_tokens
from bulletin.inbound.reading.classify import Classification, classify
from bulletin.inbound.reading.parse import parse_bytes
from bulletin.inbound.reading.report_identity import ReportIdentity, read_report_identity
from bulletin.inbound.reading.ses import sns_signed_text
from tests.inbound.conftest import dsn, mail


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Links:
    ws = tmp_path_factory.mktemp("ws")
    return Links.for_settings(load_settings(ws, secret_keys=["test-key"], sending_domain="news.example.org"))


def _read(raw: bytes | str, links: Links, **kw: object) -> tuple[Classification, ReportIdentity | None]:
    msg = parse_bytes(raw.encode() if isinstance(raw, str) else raw)
    cls = classify(msg, read_tokens(msg, links, []), **kw)  # type: ignore[arg-type]
    return cls, read_report_identity(msg, links, cls)


def _arf(original: str, *, fields: str = "Feedback-Type: abuse\nUser-Agent: FBL/1.0\nVersion: 1\n",
         subject: str = "Complaint about message") -> str:
    return f"""From: fbl@isp.example.net
To: abuse@news.example.org
Subject: {subject}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="R"

--R
Content-Type: text/plain

This is an abuse report.

--R
Content-Type: message/feedback-report

{fields}
--R
Content-Type: message/rfc822

{original}
--R--
"""


def _original(links: Links, sid: int = 7, iid: int = 3, rcpt: str = "ben@example.org") -> str:
    return (f"Return-Path: <{links.bounce_address(sid, iid)}>\nFrom: Team <team@news.example.org>\nTo: {rcpt}\n"
            f"Subject: June\nMessage-ID: {links.message_id(sid, iid)}\n\nHello\n")


def test_dsn_with_our_original_carries_verified_message_id_and_verp(links: Links) -> None:
    raw = dsn(to="bounces@news.example.org", recipient="ben@example.org", status="5.1.1",
              original_message_id=links.message_id(7, 3))
    cls, ident = _read(raw, links)
    assert cls.kind == "bounce" and ident is not None
    assert [(r.address, r.permanent) for r in ident.recipients] == [("ben@example.org", True)]
    assert ident.has_our_mark and not ident.forged and ident.sent_to() == {(7, 3)}
    assert ("message_id", "original:Message-ID") in {(m.kind, m.where) for m in ident.marks}


def test_report_naming_addresses_with_nothing_of_ours_has_no_mark(links: Links) -> None:
    raw = dsn(to="postmaster@news.example.org", recipient="ben@example.org", status="4.2.2")
    cls, ident = _read(raw, links)
    assert ident is not None and ident.kind == "bounce"
    assert [(r.address, r.permanent) for r in ident.recipients] == [("ben@example.org", False)]
    assert (ident.marks, ident.has_our_mark, ident.forged) == ((), False, False)


def test_a_guessed_message_id_of_our_shape_is_forged(links: Links) -> None:
    good = links.message_id(7, 3)
    raw = dsn(to="bounces@news.example.org", recipient="ben@example.org", status="5.1.1",
              original_message_id=good.replace("b.", "b.1", 1))
    _, ident = _read(raw, links)
    assert ident is not None and ident.forged and not ident.has_our_mark and ident.sent_to() == set()


def test_arf_with_our_verp_sender_and_message_id(links: Links) -> None:
    fields = (f"Feedback-Type: abuse\nUser-Agent: FBL/1.0\nVersion: 1\n"
              f"Original-Mail-From: <{links.bounce_address(7, 3)}>\nOriginal-Rcpt-To: <ben@example.org>\n")
    cls, ident = _read(_arf(_original(links), fields=fields), links)
    assert (cls.kind, cls.feedback_type) == ("complaint", "abuse") and ident is not None
    assert ident.kind == "complaint" and [r.address for r in ident.recipients] == ["ben@example.org"]
    wheres = {m.where for m in ident.verified_marks}
    assert {"arf:Original-Mail-From", "original:Message-ID", "original:Return-Path"} <= wheres
    assert ident.sent_to() == {(7, 3)}


def test_free_text_bounce_with_a_pasted_copy_yields_text_marks(links: Links) -> None:
    raw = f"""Return-Path: <>
From: MAILER-DAEMON@mx1.hosting.example
To: {links.bounce_address(7, 3)}
Subject: failure notice

Hi. This is the qmail-send program at mx1.hosting.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<ben@example.org>:
Remote host said: 550 No such mailbox here

--- Below this line is a copy of the message.

Return-Path: <{links.bounce_address(7, 3)}>
Message-ID: {links.message_id(7, 3)}
To: ben@example.org
"""
    cls, ident = _read(raw, links)
    assert cls.kind == "bounce" and ident is not None
    assert {(m.kind, m.where) for m in ident.verified_marks} >= {("message_id", "text"), ("bounce", "report:To")}


@pytest.mark.parametrize("subject", ["Feedback report: June bulletin", "Spam report", "Abuse report",
                                     "Complaint about message"])
def test_words_in_the_subject_never_make_a_complaint(subject: str, links: Links) -> None:
    """A reader's reply titled like a report, with the bulletin attached, stays a reader's mail."""
    raw = f"""From: Amina <amina@example.gov.uk>
To: {links.reply_address(1, 3)}
Subject: {subject}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="M"

--M
Content-Type: text/plain

My feedback on the June issue: more on payroll please.

--M
Content-Type: message/rfc822

{_original(links, 1, 3, "amina@example.gov.uk")}
--M
Content-Type: text/rfc822-headers

{_original(links, 1, 3, "amina@example.gov.uk").split(chr(10) + chr(10))[0]}

--M--
"""
    cls, ident = _read(raw, links)
    assert (cls.kind, ident) == ("mail", None)


def test_feedback_report_part_without_feedback_type_is_no_complaint(links: Links) -> None:
    cls, _ = _read(_arf(_original(links), fields="User-Agent: FBL/1.0\nVersion: 1\n"), links)
    assert cls.kind != "complaint"


def test_feedback_titled_reply_becomes_feedback_in_the_pipeline(world) -> None:  # type: ignore[no-untyped-def]
    from bulletin.inbound import ingest

    sid = world.subscribers["amina@example.gov.uk"]
    raw = mail(to=world.links.reply_address(sid, world.issue_id), subject="Feedback report: June 2016",
               body="More on payroll please.\n")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id) == ("reply", sid) and result.feedback_id


# --- Amazon SES through SNS: only a signature that verifies makes a complaint ----------------------------------

@pytest.fixture(scope="module")
def sns_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


def _sns_mail(key: rsa.RSAPrivateKey, *, tamper: bool = False) -> str:
    ses = {"notificationType": "Complaint",
           "complaint": {"complainedRecipients": [{"emailAddress": "ben@example.org"}],
                         "complaintFeedbackType": "abuse"},
           "mail": {"source": "bounces+x@news.example.org", "messageId": "0100-ses"}}
    envelope = {"Type": "Notification", "MessageId": "a1b2", "TopicArn": "arn:aws:sns:eu-west-1:1:ses",
                "Message": json.dumps(ses), "Timestamp": "2025-01-06T09:00:00.000Z", "SignatureVersion": "2"}
    text = sns_signed_text(envelope)
    assert text is not None
    envelope["Signature"] = base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
    if tamper:
        envelope["Message"] = envelope["Message"].replace("ben@", "carl@")
    return ("From: no-reply@sns.amazonaws.com\nTo: ops@news.example.org\nSubject: AWS Notification Message\n"
            f"x-amz-sns-message-id: a1b2\nContent-Type: text/plain\n\n{json.dumps(envelope)}\n")


def test_signed_ses_complaint_is_a_complaint(sns_key: tuple[rsa.RSAPrivateKey, bytes], links: Links) -> None:
    key, pem = sns_key
    cls, ident = _read(_sns_mail(key), links, sns_certificates=[pem])
    assert (cls.kind, cls.reason, cls.complaint_addresses) == ("complaint", "ses", ("ben@example.org",))
    assert ident is not None and ident.kind == "complaint"


@pytest.mark.parametrize("case", ["no-certificate", "tampered", "other-certificate"])
def test_unverified_ses_complaint_is_not_a_complaint(case: str, sns_key: tuple[rsa.RSAPrivateKey, bytes],
                                                     links: Links) -> None:
    key, pem = sns_key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw = _sns_mail(other if case == "other-certificate" else key, tamper=case == "tampered")
    certs = [] if case == "no-certificate" else [pem]
    cls, ident = _read(raw, links, sns_certificates=certs)
    assert (cls.kind, cls.reason) == ("auto_reply", "ses-complaint-unverified")
    assert ident is not None and [r.address for r in ident.recipients] == [("carl" if case == "tampered" else "ben")
                                                                              + "@example.org"]
