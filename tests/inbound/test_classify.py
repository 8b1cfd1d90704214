"""Classification against the public sisimai corpus, plus one message per auto-reply sign.

Expectations come from sisimai's own tables (expected.json). The corpus gives
no recipient addresses, so "recipient right" is checked as the number of
recipients found; permanence is checked against the RFC 3463 class of the
expected status code (5 = permanent, 4 = temporary), which is how bulletin decides.
"""

from __future__ import annotations

import json
from email.message import Message
from pathlib import Path

import pytest

from bulletin.audience.links import Links
from bulletin.config import load_settings
from bulletin.inbound.reading.addresses import AddressTokens, read_tokens
from bulletin.inbound.reading.classify import Classification, classify
from bulletin.inbound.reading.parse import parse_bytes
from tests.conftest import corpus


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Links:
    ws = tmp_path_factory.mktemp("ws")
    return Links.for_settings(load_settings(ws, secret_keys=["test-key"], sending_domain="news.example.org"))


def _classify(raw: bytes, links: Links) -> Classification:
    msg = parse_bytes(raw)
    return classify(msg, read_tokens(msg, links, []))


@pytest.fixture(scope="module")
def sisimai(links: Links) -> dict[str, tuple[Classification, list[dict[str, object]]]]:
    root = corpus("sisimai")
    expected = json.loads((root / "expected.json").read_text())["expected"]
    out = {}
    for name, rows in expected.items():
        path = root / "maildir" / "bsd" / name
        if path.exists():
            out[name] = (_classify(path.read_bytes(), links), rows)
    return out


def _bounces(sisimai: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in sisimai.items() if v[1][0]["reason"] not in ("feedback", "vacation", "delivered")}


def test_delivery_notices_are_not_bounces(sisimai: dict) -> None:  # type: ignore[type-arg]
    delivered = {k: c for k, (c, rows) in sisimai.items() if rows[0]["reason"] == "delivered"}
    assert delivered and all(c.kind == "auto_reply" for c in delivered.values()), delivered


def test_bounces_are_classified_as_bounces(sisimai: dict) -> None:  # type: ignore[type-arg]
    bounces = _bounces(sisimai)
    right = sum(c.kind == "bounce" for c, _ in bounces.values())
    # Floor raised by issue 11 (was 509/531): MTA families' free-text notices are read too.
    assert len(bounces) == 531 and right >= 525, f"{right}/{len(bounces)}"


def test_bounce_recipient_count_and_permanence(sisimai: dict) -> None:  # type: ignore[type-arg]
    bounces = _bounces(sisimai)
    counted = {k: (c, rows) for k, (c, rows) in bounces.items() if len(c.bounces) == len(rows)}
    assert len(counted) / len(bounces) >= 0.92, f"{len(counted)}/{len(bounces)}"
    kind_right = 0
    for c, rows in counted.values():
        want = [str(r["deliverystatus"]).startswith("5") if r["deliverystatus"] else r["hardbounce"] for r in rows]
        kind_right += [b.permanent for b in c.bounces] == want
    # Floor raised by issue 11 (was 475/531): "recipient and permanent/temporary right".
    assert kind_right >= 505, f"{kind_right}/{len(bounces)}"


def test_every_bounce_recipient_is_an_address(sisimai: dict) -> None:  # type: ignore[type-arg]
    for name, (c, _) in _bounces(sisimai).items():
        for b in c.bounces:
            assert "@" in b.address and " " not in b.address, name


def test_rfc3464_report_reads_status_and_diagnostic(sisimai: dict) -> None:  # type: ignore[type-arg]
    c, _ = sisimai["rfc3464-01.eml"]
    assert (c.reason, c.bounces[0].address, c.bounces[0].status) == ("dsn", "userunknown@bouncehammer.jp", "5.1.1")
    assert c.bounces[0].permanent and "User Unknown" in c.bounces[0].diagnostic


def test_arf_complaints_are_recognised(sisimai: dict) -> None:  # type: ignore[type-arg]
    """A report with a feedback-report part is a complaint when its type says the recipient objected
    (abuse, opt-out); a DMARC failure report (auth-failure) is not, and neither are the subject-only
    ones (Hotmail's old JMRP)."""
    arf = {k: c for k, (c, rows) in sisimai.items() if rows[0]["reason"] == "feedback"}
    standard = [k for k in arf if b"message/feedback-report" in (corpus("sisimai", "maildir", "bsd", k)).read_bytes()]
    objected = [k for k in standard if arf[k].feedback_type in ("abuse", "opt-out")]
    failures = [k for k in standard if arf[k].feedback_type == "auth-failure"]
    assert len(objected) >= 10 and all(arf[k].kind == "complaint" for k in objected)
    assert len(failures) >= 3 and all(arf[k].kind == "auto_reply" and arf[k].reason == "arf-not-a-complaint"
                                      and arf[k].complaint_addresses for k in failures)
    assert len(objected) + len(failures) == len(standard)
    assert all(c.kind != "complaint" for k, c in arf.items() if k not in standard)


def test_rfc3834_auto_replies_are_recognised(sisimai: dict) -> None:  # type: ignore[type-arg]
    auto = {k: c for k, (c, rows) in sisimai.items() if rows[0]["reason"] == "vacation"}
    assert auto and all(c.kind == "auto_reply" for c in auto.values()), auto


@pytest.mark.parametrize("name", ["is-not-bounce-01.eml", "is-not-bounce-02.eml", "rb-issue-368-bug.eml"])
def test_not_bounces_are_neither_bounce_nor_complaint(name: str, links: Links) -> None:
    c = _classify(corpus("sisimai", "maildir", "not", name).read_bytes(), links)
    assert c.kind not in ("bounce", "complaint")


@pytest.mark.parametrize("folder", ["err", "dos", "mac"])
def test_odd_messages_classify_without_raising(folder: str, links: Links) -> None:
    files = sorted(corpus("sisimai", "maildir", folder).iterdir())
    kinds = [_classify(f.read_bytes(), links).kind for f in files]
    assert len(kinds) == len(files)


def test_cr_only_and_crlf_copies_classify_like_the_original(links: Links) -> None:
    bsd, mac, dos = (corpus("sisimai", "maildir", d) for d in ("bsd", "mac", "dos"))
    same = [f.name for f in mac.iterdir() if (bsd / f.name).exists() and (dos / f.name).exists()]
    assert same
    for name in same:
        want = _classify((bsd / name).read_bytes(), links)
        for folder in (mac, dos):
            got = _classify((folder / name).read_bytes(), links)
            assert (got.kind, [b.address for b in got.bounces]) == (want.kind, [b.address for b in want.bounces]), name


def _msg(headers: dict[str, str], subject: str = "Re: June bulletin") -> bytes:
    lines = ["From: amina@example.gov.uk", "To: reply@news.example.org", f"Subject: {subject}",
             *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\n".join(lines) + "\n\nI am away.\n").encode()


@pytest.mark.parametrize(("headers", "subject"), [
    ({"Auto-Submitted": "auto-replied (vacation)"}, "Re: June bulletin"),
    ({"X-Autoreply": "yes"}, "Re: June bulletin"),
    ({"X-MS-Exchange-Inbox-Rules-Loop": "amina@example.gov.uk"}, "Re: June bulletin"),
    ({"Return-Path": "<>"}, "Re: June bulletin"),
    ({"Precedence": "auto_reply"}, "Re: June bulletin"),
    ({}, "Automatic reply: June bulletin"),
    ({}, "Out of Office: June bulletin"),
    ({}, "Abwesenheitsnotiz: June bulletin"),
    ({}, "Réponse automatique : June bulletin"),
    ({}, "Automatisch antwoord: June bulletin"),
    ({}, "Frånvaro: June bulletin"),
    ({}, "Poza biurem: June bulletin"),
    ({}, "Respuesta automática: June bulletin"),
])
def test_auto_reply_signs(headers: dict[str, str], subject: str, links: Links) -> None:
    assert _classify(_msg(headers, subject), links).kind == "auto_reply"


@pytest.mark.parametrize("subject", ["Re: Absence management: new shared service",
                                     "Re: Vacation policy across the three councils", "Re: On leave? Who covers payroll",
                                     "Automatic replies to the consultation"])
def test_a_subject_that_only_starts_with_an_away_word_is_a_person_writing(subject: str, links: Links) -> None:
    assert _classify(_msg({}, subject), links).kind == "mail"


@pytest.mark.parametrize("subject", ["Out of Office", "Out of office - June bulletin", "不在：June bulletin",
                                     "On leave (until 5 June)", "Re: Out of office: June bulletin"])
def test_away_subjects_as_mail_systems_write_them(subject: str, links: Links) -> None:
    assert _classify(_msg({}, subject), links).kind == "auto_reply"


@pytest.mark.parametrize("headers", [{}, {"Auto-Submitted": "no"}, {"Return-Path": "<amina@example.gov.uk>"}])
def test_human_mail_is_not_an_auto_reply(headers: dict[str, str], links: Links) -> None:
    assert _classify(_msg(headers), links).kind == "mail"


def test_forged_reply_token_is_flagged(links: Links) -> None:
    good = links.reply_address(1, 1)
    msg: Message = parse_bytes(_msg({}).replace(b"reply@news.example.org", good[:-22].encode() + b"x@news.example.org"))
    assert read_tokens(msg, links, []).forged
    assert read_tokens(parse_bytes(_msg({})), links, [good]) == AddressTokens(reply=(1, 1))


def test_unreadable_corpus_folder_would_skip_not_fail() -> None:
    assert Path(corpus("sisimai")).is_dir()


def test_ses_bounce_and_complaint_notifications_are_read(sisimai: dict) -> None:  # type: ignore[type-arg]
    """Read, but unverified: no SNS certificate is configured, so nothing here is a complaint."""
    bounce, _ = sisimai["lhost-amazonses-09.eml"]
    assert (bounce.kind, bounce.reason, bounce.bounces[0].address, bounce.bounces[0].permanent) == (
        "bounce", "ses-unverified", "bounce@simulator.amazonses.com", True)
    complaint, _ = sisimai["lhost-amazonses-11.eml"]
    assert (complaint.kind, complaint.reason, complaint.complaint_addresses) == (
        "auto_reply", "ses-complaint-unverified", ("complaint@simulator.amazonses.com",))


def test_unreadable_ses_json_falls_through(links: Links) -> None:
    raw = b"From: no-reply@sns.amazonaws.com\nx-amz-sns-message-id: 1\nSubject: AWS Notification\n\n{not json\n"
    assert _classify(raw, links).kind == "mail"
