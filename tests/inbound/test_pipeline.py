"""ingest(): store first, then classify, match and act; nothing lost, nothing guessed."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bulletin.db import session_scope
from bulletin.inbound import ingest, reprocess
from bulletin.models import Feedback, InboundMessage
from tests.inbound.conftest import ISSUE_SUBJECT, World, arf, mail


def test_reply_to_token_address_becomes_feedback_with_block(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    raw = mail(to=world.links.reply_address(sid, world.issue_id), subject=f"Re: {ISSUE_SUBJECT} [tell-us]",
               body="We would like more on payroll.\n\nOn Wed, 1 Jun 2016, Team wrote:\n> Hello\n")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.match) == ("reply", "reply-token")
    assert result.subscriber == "amina@example.gov.uk" and result.issue == "2016-06"
    assert result.block == "tell-us"
    assert result.visible_text == "We would like more on payroll."
    with session_scope(world.engine) as session:
        fb = session.exec(select(Feedback)).one()
        assert fb.subscriber_id == sid and fb.status == "new" and "> Hello" in fb.full_text


def _states(world: World, sid: int) -> set[str]:
    from bulletin.models import Subscription

    with session_scope(world.engine) as session:
        return {s.state for s in session.exec(select(Subscription).where(Subscription.subscriber_id == sid))}


def _events(world: World, sid: int) -> list[str]:
    from bulletin.models import SubscriberEvent

    with session_scope(world.engine) as session:
        rows = session.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sid)
                            .order_by(SubscriberEvent.id)).all()
        return [e.kind for e in rows]


def test_same_message_delivered_twice_is_stored_once(world: World) -> None:
    raw = mail(to="someone@example.org", frm="stranger@example.net")
    first = ingest(world.engine, world.settings, raw, source="test")
    second = ingest(world.engine, world.settings, raw, source="test")
    assert not first.duplicate and second.duplicate and first.inbound_id == second.inbound_id
    with session_scope(world.engine) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 1


def test_the_same_bytes_for_another_envelope_recipient_are_read_again_with_it(world: World) -> None:
    """An MTA that delivers one recipient at a time (or a Bcc) hands us the same bytes twice; the
    second recipient may be the only place our token is."""
    sid = world.subscribers["ben@example.org"]
    raw = mail(to="team@example.org", frm="someone@example.net", message_id="<twice@example.net>")
    first = ingest(world.engine, world.settings, raw, source="test", envelope_to=["team-archive@example.org"])
    assert first.classification == "unmatched"
    second = ingest(world.engine, world.settings, raw, source="test",
                    envelope_to=[world.links.reply_address(sid, world.issue_id)])
    assert second.duplicate and second.inbound_id == first.inbound_id
    assert (second.classification, second.subscriber_id) == ("reply", sid)
    third = ingest(world.engine, world.settings, raw, source="test", envelope_to=["team-archive@example.org"])
    assert third.duplicate and third.classification == "reply"  # nothing new: described, not processed again
    with session_scope(world.engine) as session:
        assert len(session.exec(select(Feedback)).all()) == 1
        (row,) = session.exec(select(InboundMessage)).all()
        assert row.envelope_to == f"team-archive@example.org, {world.links.reply_address(sid, world.issue_id)}"


def test_message_without_message_id_is_keyed_by_content(world: World) -> None:
    raw = b"From: x@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
    first = ingest(world.engine, world.settings, raw, source="test")
    assert first.message_id.startswith("<sha256.")
    assert ingest(world.engine, world.settings, raw, source="test").duplicate


def test_forged_reply_token_stays_unmatched_even_from_a_subscriber(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    good = world.links.reply_address(sid, world.issue_id)
    forged = good.replace(good.split("-")[-1].split("@")[0], "aaaaaaaaaaaaaaaa")
    result = ingest(world.engine, world.settings, mail(to=forged), source="test")
    assert (result.classification, result.reason, result.subscriber_id) == ("unmatched", "forged-token", None)
    with session_scope(world.engine) as session:
        assert session.exec(select(Feedback)).all() == []


@pytest.mark.parametrize("other", ["Ticket <reply+ABCD1234EFGH5678@reply.github.com>",
                                   "bounces+4242-ab12-jo=example.org@em.sendgrid.net"])
def test_another_services_plus_address_beside_our_reply_address_is_not_a_forgery(world: World, other: str) -> None:
    """Trackers and senders use the same `reply+`/`bounces+` shapes; only a bad token at our domain is forged."""
    sid = world.subscribers["ben@example.org"]
    raw = mail(to=f"{other}, {world.links.reply_address(sid, world.issue_id)}", frm="Ben <ben@example.org>",
               body="Looping in our tracker. Great issue.\n")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.match, result.subscriber_id) == ("reply", "reply-token", sid)


def test_a_bad_token_at_our_domain_beside_a_good_one_is_still_forged(world: World) -> None:
    sid = world.subscribers["ben@example.org"]
    forged = f"{world.settings.reply_local}+aaaaaaaaaaaaaaaa@{world.settings.sending_domain}"
    raw = mail(to=f"{forged}, {world.links.reply_address(sid, world.issue_id)}", frm="Ben <ben@example.org>")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.reason, result.subscriber_id) == ("unmatched", "forged-token", None)


@pytest.mark.parametrize("by", ["reply-token", "in-reply-to"])
def test_a_reply_all_from_another_subscriber_is_filed_under_the_writer(world: World, by: str) -> None:
    amina, carl = world.subscribers["amina@example.gov.uk"], world.subscribers["carl@example.org"]
    if by == "reply-token":
        raw = mail(to=f"Amina <amina@example.gov.uk>, {world.links.reply_address(amina, world.issue_id)}",
                   frm="Carl <carl@example.org>", body="I disagree with Amina.\n")
    else:
        raw = mail(to="shared-services@example.gov.uk", frm="Carl <carl@example.org>", body="I disagree.\n",
                   headers={"References": world.links.message_id(amina, world.issue_id)})
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id, result.issue_id, result.match) == (
        "reply", carl, world.issue_id, "sender+" + by)
    with session_scope(world.engine) as session:
        assert session.exec(select(Feedback.subscriber_id)).all() == [carl]


def test_a_reply_from_an_address_we_do_not_know_stays_with_the_token(world: World) -> None:
    """People answer from a second address: an unknown sender does not move the reply off the token."""
    amina = world.subscribers["amina@example.gov.uk"]
    raw = mail(to=world.links.reply_address(amina, world.issue_id), frm="Amina <amina.home@example.net>")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id, result.match) == ("reply", amina, "reply-token")


def test_a_bounce_a_subscriber_forwards_to_the_reply_address_is_their_feedback(world: World) -> None:
    """Ben forwards, as an attachment, a bounce he got from an address in the issue, to tell us."""
    from pathlib import Path

    sid = world.subscribers["ben@example.org"]
    raw = (Path(__file__).parent / "data" / "forwarded_dsn.eml").read_text().replace(
        "REPLY_ADDRESS", world.links.reply_address(sid, world.issue_id)).replace("\n", "\r\n").encode()
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id, result.evidence) == ("reply", sid, [])
    assert "does not work" in (result.visible_text or "")
    assert _states(world, sid) == {"confirmed"}


def test_reply_matched_by_in_reply_to_our_message_id(world: World) -> None:
    sid = world.subscribers["ben@example.org"]
    raw = mail(to="shared-services@example.gov.uk", frm="ben@example.org",
               headers={"In-Reply-To": world.links.message_id(sid, world.issue_id)})
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.match, result.subscriber_id, result.issue_id) == (
        "reply", "in-reply-to", sid, world.issue_id)


def test_reply_matched_by_sender_and_subject(world: World) -> None:
    raw = mail(to="shared-services@example.gov.uk", frm="Carl <CARL@example.org>",
               subject=f"AW: Re: {ISSUE_SUBJECT} [payroll-merger]")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.match, result.issue, result.block) == ("sender+subject", "2016-06", "payroll-merger")


def test_unknown_block_tag_is_not_attached(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    raw = mail(to=world.links.reply_address(sid, world.issue_id), subject=f"Re: {ISSUE_SUBJECT} [no-such-block]")
    assert ingest(world.engine, world.settings, raw, source="test").block is None


def test_stranger_mail_is_unmatched(world: World) -> None:
    result = ingest(world.engine, world.settings, mail(to="reply@news.example.org", frm="x@example.net"),
                    source="test")
    assert (result.classification, result.subscriber_id, result.feedback_id) == ("unmatched", None, None)


def test_hard_bounce_to_verp_address_marks_subscriptions_bounced(world: World) -> None:
    from tests.inbound.conftest import dsn

    sid = world.subscribers["ben@example.org"]
    raw = dsn(to=world.links.bounce_address(sid, world.issue_id), recipient="ben@example.org", status="5.1.1")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.reason, result.subscriber_id) == ("bounce", "verp+dsn", sid)
    assert result.bounces[0]["permanent"] is True and result.bounces[0]["status"] == "5.1.1"
    assert _states(world, sid) == {"bounced"}
    assert _events(world, sid).count("bounce") == 2


def test_dsn_without_verp_naming_a_subscriber_is_unverified_evidence(world: World) -> None:
    from tests.inbound.conftest import dsn

    sid = world.subscribers["carl@example.org"]
    raw = dsn(to="bounces@news.example.org", recipient="carl@example.org", status="5.1.1")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.verified, result.subscriber_id) == ("bounce", False, None)
    assert result.bounces[0]["permanent"] is True and result.bounces[0]["verified"] is False
    assert result.bounces[0]["subscriber_id"] == sid  # named, for staff to see; not acted on
    assert _states(world, sid) == {"confirmed"}


def test_repeated_soft_bounces_in_one_day_count_once(world: World) -> None:
    from bulletin.audience.bounces import bounce_score
    from tests.inbound.conftest import dsn

    sid = world.subscribers["amina@example.gov.uk"]
    verp = world.links.bounce_address(sid, world.issue_id)
    for n in range(world.settings.bounce_score_threshold + 2):
        raw = dsn(to=verp, recipient="amina@example.gov.uk", status="4.2.2", message_id=f"<soft{n}@mx>")
        result = ingest(world.engine, world.settings, raw, source="test")
        assert result.bounces[0]["permanent"] is False and result.verified is True
    with session_scope(world.engine) as session:
        assert bounce_score(session, sid) == 1
    assert _states(world, sid) == {"confirmed"}


def test_complaint_unsubscribes_every_list_and_suppresses(world: World) -> None:
    from bulletin.audience.subscribers import is_suppressed

    sid = world.subscribers["ben@example.org"]
    raw = arf(world.links.message_id(sid, world.issue_id),
              world.links.unsubscribe_mailto(sid, world.list_ids[0]).removeprefix("mailto:"))
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id, result.issue_id) == ("complaint", sid, world.issue_id)
    assert _states(world, sid) == {"complained"}
    with session_scope(world.engine) as session:
        assert is_suppressed(session, "ben@example.org")
    assert "complaint" in _events(world, sid) and "suppress" in _events(world, sid)


def test_auto_reply_is_matched_but_makes_no_feedback(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    raw = mail(to=world.links.reply_address(sid, world.issue_id), subject="Out of Office: away until Monday",
               headers={"Auto-Submitted": "auto-replied"})
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id, result.feedback_id) == ("auto_reply", sid, None)
    assert _states(world, sid) == {"confirmed"}


def test_list_unsubscribe_mailto_leaves_that_list(world: World) -> None:
    sid = world.subscribers["carl@example.org"]
    address = world.links.unsubscribe_mailto(sid, world.list_ids[0]).removeprefix("mailto:").split("?")[0]
    result = ingest(world.engine, world.settings, mail(to=address, subject="unsubscribe"), source="test")
    assert result.classification == "unsubscribe"
    assert _states(world, sid) == {"unsubscribed", "confirmed"}


def test_parser_crash_quarantines_and_the_next_message_goes_on(world: World) -> None:
    # flufl.bounce 6.0.0 raises IndexError on a single-part message with no From: header.
    raw = b"To: someone@example.org\r\nSubject: Undelivered mail\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <q@x>\r\n\r\nfailed\r\n"
    bad = ingest(world.engine, world.settings, raw, source="test")
    assert bad.status == "quarantined" and "IndexError" in (bad.error or "")
    good = ingest(world.engine, world.settings, mail(to="a@example.org", frm="x@example.net"), source="test")
    assert good.status == "processed"
    with session_scope(world.engine) as session:
        row = session.get(InboundMessage, bad.inbound_id)
        assert row is not None and row.raw == raw and row.status == "quarantined"


def test_reprocess_recomputes_from_raw_and_keeps_staff_status(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    raw = mail(to=world.links.reply_address(sid, world.issue_id))
    first = ingest(world.engine, world.settings, raw, source="test")
    with session_scope(world.engine) as session:
        fb = session.get(Feedback, first.feedback_id)
        assert fb is not None
        fb.status, fb.visible_text = "read", "tampered"
        session.add(fb)
    again = reprocess(world.engine, world.settings)
    assert [r.feedback_id for r in again] == [first.feedback_id]
    with session_scope(world.engine) as session:
        fb = session.get(Feedback, first.feedback_id)
        assert fb is not None and fb.status == "read" and fb.visible_text == "Thanks, very useful."


def test_reprocessing_a_soft_bounce_does_not_count_it_twice(world: World) -> None:
    from tests.inbound.conftest import dsn

    sid = world.subscribers["amina@example.gov.uk"]
    raw = dsn(to=world.links.bounce_address(sid, world.issue_id), recipient="amina@example.gov.uk", status="4.2.2")
    ingest(world.engine, world.settings, raw, source="test")
    for _ in range(world.settings.bounce_score_threshold):
        reprocess(world.engine, world.settings)
    assert _states(world, sid) == {"confirmed"}
    from bulletin.models import Bounce

    with session_scope(world.engine) as session:
        assert len(session.exec(select(Bounce).where(Bounce.subscriber_id == sid)).all()) == 1


@pytest.mark.parametrize("how", ["unsubscribe", "complaint"])
def test_reprocessing_does_not_apply_an_old_consent_action_to_todays_choice(world: World, how: str) -> None:
    """Ben left (by the List-Unsubscribe mailto, or by complaining), then chose to come back; a
    reprocess after a rule change must not take him off again."""
    from bulletin.audience.lifecycle import set_state
    from bulletin.models import Subscriber, Suppression

    sid = world.subscribers["ben@example.org"]
    unsubscribe = world.links.unsubscribe_mailto(sid, world.list_ids[0]).removeprefix("mailto:").split("?")[0]
    if how == "unsubscribe":
        raw, envelope = mail(to=unsubscribe, frm="ben@example.org", subject="unsubscribe"), [unsubscribe]
    else:
        raw, envelope = arf(world.links.message_id(sid, world.issue_id), unsubscribe), []
    first = ingest(world.engine, world.settings, raw, source="test", envelope_to=envelope)
    assert first.verified and _states(world, sid) != {"confirmed"}
    with session_scope(world.engine) as session:
        for row in session.exec(select(Suppression)).all():
            session.delete(row)
        ben = session.get(Subscriber, sid)
        assert ben is not None
        ben.suppressed = False
        for list_id in world.list_ids:
            set_state(session, sid, list_id, "confirmed", kind="confirm", source="web", actor="ben")
    again = reprocess(world.engine, world.settings)
    assert [r.verified for r in again] == [True]  # still authenticated evidence, only not acted on twice
    assert _states(world, sid) == {"confirmed"}


def test_malformed_corpus_messages_are_all_stored_and_never_crash(world: World) -> None:
    from tests.conftest import corpus

    files = sorted(corpus("sisimai", "maildir", "err").iterdir())
    results = [ingest(world.engine, world.settings, f.read_bytes(), source="test") for f in files]
    assert all(r.status in ("processed", "quarantined") for r in results)
    with session_scope(world.engine) as session:
        stored = {r.raw for r in session.exec(select(InboundMessage)).all()}
    assert {f.read_bytes() for f in files} <= stored or len(stored) == len({r.message_id for r in results})


def test_out_of_office_sent_to_the_verp_address_is_an_auto_reply_not_a_bounce(world: World) -> None:
    sid = world.subscribers["ben@example.org"]
    raw = mail(to=world.links.bounce_address(sid, world.issue_id), frm="ben@example.org",
               subject="Automatic reply: " + ISSUE_SUBJECT, headers={"X-MS-Exchange-Inbox-Rules-Loop": "ben@example.org"})
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id, result.match) == ("auto_reply", sid, "bounce-token")
    assert _states(world, sid) == {"confirmed"}


def test_reply_attachments_are_listed_on_the_feedback(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    body = ("--X\nContent-Type: text/plain\n\nSee our plan.\n--X\nContent-Type: application/pdf\n"
            "Content-Disposition: attachment; filename=plan.pdf\nContent-Transfer-Encoding: base64\n\n"
            "JVBERi0=\n--X--\n")
    raw = mail(to=world.links.reply_address(sid, world.issue_id), body=body)
    raw = raw.replace(b"Content-Type: text/plain; charset=utf-8", b'Content-Type: multipart/mixed; boundary="X"')
    result = ingest(world.engine, world.settings, raw, source="test")
    with session_scope(world.engine) as session:
        fb = session.get(Feedback, result.feedback_id)
        assert fb is not None and fb.visible_text == "See our plan."
        assert fb.attachments == [{"filename": "plan.pdf", "content_type": "application/pdf", "size": 5}]


def test_complaint_matched_by_verp_original_mail_from(world: World) -> None:
    from pathlib import Path

    sid = world.subscribers["carl@example.org"]
    raw = (Path(__file__).parent / "data" / "arf.eml").read_text()
    raw = raw.replace("Original-Rcpt-To: ben@example.org",
                      f"Original-Mail-From: <{world.links.bounce_address(sid, world.issue_id)}>")
    raw = raw.replace("To: ben@example.org", "To: redacted@example.net")
    result = ingest(world.engine, world.settings, raw.encode(), source="test")
    assert (result.classification, result.subscriber_id, result.match) == ("complaint", sid, "report-bounce")
    assert _states(world, sid) == {"complained"}


def test_person_writing_about_a_delivery_problem_is_not_a_bounce(world: World) -> None:
    raw = mail(to="reply@news.example.org", frm="amina@example.gov.uk",
               subject="Re: Undelivered copies of the bulletin",
               body="Our colleague carl@example.org says the bulletin was rejected with an error.\n")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert result.classification == "reply" and result.bounces == []
    assert _states(world, world.subscribers["carl@example.org"]) == {"confirmed"}


def test_text_bounce_without_a_status_code_only_counts_as_soft(world: World) -> None:
    raw = mail(to="bounces@news.example.org", frm="MAILER-DAEMON <>", subject="Mail delivery failed",
               body="Your message could not be delivered to the following recipients:\n\n  carl@example.org\n")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert result.classification == "bounce" and result.bounces[0]["permanent"] is False
    assert result.verified is False
    assert _states(world, world.subscribers["carl@example.org"]) == {"confirmed"}


def test_valid_token_for_an_unknown_subscriber_stays_unmatched(world: World) -> None:
    raw = mail(to=world.links.reply_address(99999, world.issue_id), frm="amina@example.gov.uk")
    result = ingest(world.engine, world.settings, raw, source="test")
    assert (result.classification, result.subscriber_id, result.feedback_id) == ("unmatched", None, None)


def test_reused_message_id_with_other_bytes_is_stored_and_processed(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    junk = mail(to="reply@news.example.org", frm="squatter@example.net", body="buy now\n", message_id="<same@x>")
    first = ingest(world.engine, world.settings, junk, source="test")
    assert (first.classification, first.message_id_reused) == ("unmatched", False)
    reply = mail(to=world.links.reply_address(sid, world.issue_id), body="Real answer.\n", message_id="<same@x>")
    second = ingest(world.engine, world.settings, reply, source="test")
    assert not second.duplicate and second.message_id_reused and second.inbound_id != first.inbound_id
    assert (second.classification, second.subscriber_id, second.visible_text) == ("reply", sid, "Real answer.")
    again = ingest(world.engine, world.settings, reply, source="test")
    assert again.duplicate and again.inbound_id == second.inbound_id
    with session_scope(world.engine) as session:
        assert len(session.exec(select(InboundMessage)).all()) == 2
