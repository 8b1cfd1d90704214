"""Unmatched, unverified and quarantined mail is visible (`inbound list`/`show`) and can be attached by hand."""

from __future__ import annotations

import json

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.inbound import ingest, reprocess
from bulletin.models import AuditEntry, Feedback, InboundMessage
from tests.inbound.conftest import ISSUE_SUBJECT, World, dsn, mail, run_cli


def _json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_a_question_to_the_lists_own_address_is_findable_and_explained(world: World) -> None:
    raw = mail(to="Shared Services <shared-services@example.gov.uk>", frm="Dee <dee@example.net>",
               subject="How do I get on your mailing list?", body="How do I get on your mailing list?\n",
               message_id="<q1@example.net>")
    stored = ingest(world.engine, world.settings, raw, source="test")
    ingest(world.engine, world.settings, mail(to=world.links.reply_address(world.subscribers["ben@example.org"],
                                                                            world.issue_id)), source="test")
    out = run_cli(world, "inbound", "list", "--class", "unmatched", "--json")
    assert out.exit_code == 0, out.output
    (row,) = _json_lines(out.stdout)
    assert (row["id"], row["to_list"], row["sender"], row["subject"]) == (
        stored.inbound_id, "shared-services", "dee@example.net", "How do I get on your mailing list?")
    show = run_cli(world, "inbound", "show", str(stored.inbound_id))
    assert show.exit_code == 0, show.output
    assert "Subject: How do I get on your mailing list?" in show.stdout
    assert "sender dee@example.net is not a subscriber" in show.stdout


def test_unverified_evidence_is_listed_and_verified_is_not(world: World) -> None:
    sid = world.subscribers["ben@example.org"]
    forged = ingest(world.engine, world.settings, dsn(to="postmaster@news.example.org", recipient="ben@example.org",
                                                      status="5.1.1"), source="test")
    ingest(world.engine, world.settings, dsn(to=world.links.bounce_address(sid, world.issue_id),
                                             recipient="ben@example.org", status="4.2.2",
                                             message_id="<ok@mx.example.net>"), source="test")
    out = run_cli(world, "inbound", "list", "--class", "unverified", "--json")
    (row,) = _json_lines(out.stdout)
    assert (row["id"], row["verified"], row["why"]) == (forged.inbound_id, False, "nothing-of-ours-in-report")
    detail = json.loads(run_cli(world, "inbound", "show", str(forged.inbound_id), "--json").stdout)
    assert detail["evidence"][0]["address"] == "ben@example.org" and detail["evidence"][0]["verified"] is False


def test_quarantined_mail_is_listed_with_its_error(world: World) -> None:
    raw = (b"To: someone@example.org\r\nSubject: Undelivered mail\r\nAuto-Submitted: auto-replied\r\n"
           b"Message-ID: <q@x>\r\n\r\nfailed\r\n")
    bad = ingest(world.engine, world.settings, raw, source="test")
    assert bad.status == "quarantined"
    (row,) = _json_lines(run_cli(world, "inbound", "list", "--class", "quarantined", "--json").stdout)
    assert row["id"] == bad.inbound_id and "IndexError" in str(row["why"])


def test_attach_turns_unmatched_mail_into_feedback_that_survives_reprocess(world: World) -> None:
    sid = world.subscribers["carl@example.org"]
    raw = mail(to="shared-services@example.gov.uk", frm="Carl at home <carl.home@example.net>",
               body="Sent from my other address: more on payroll please.\n", message_id="<home@example.net>")
    stored = ingest(world.engine, world.settings, raw, source="test")
    assert stored.classification == "unmatched"
    out = run_cli(world, "inbound", "attach", str(stored.inbound_id), "--subscriber", "CARL@example.org",
                  "--issue", "2016-06", "--json")
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert (view["subscriber_id"], view["issue"]) == (sid, "2016-06")
    reprocess(world.engine, world.settings, ids=[stored.inbound_id])
    with session_scope(world.engine) as session:
        fb = session.exec(select(Feedback)).one()
        assert (fb.subscriber_id, fb.id) == (sid, view["id"]) and (fb.attached_by or "").startswith("cli")
        (entry,) = session.exec(select(AuditEntry).where(AuditEntry.action == "inbound.attach")).all()
        assert (entry.actor, entry.target) == (fb.attached_by, f"inbound #{stored.inbound_id} -> subscriber #{sid}")
    assert _json_lines(run_cli(world, "inbound", "list", "--class", "unmatched", "--json").stdout) == []


def test_attach_refuses_unknown_subscriber_issue_and_non_unmatched_mail(world: World) -> None:
    import pytest

    from bulletin.errors import NotFound, StateError
    from bulletin.inbound import attach_inbound, list_inbound, show_inbound

    stray = ingest(world.engine, world.settings, mail(to="x@news.example.org", frm="dee@example.net"), source="test")
    sid = world.subscribers["ben@example.org"]
    reply = ingest(world.engine, world.settings, mail(to=world.links.reply_address(sid, world.issue_id),
                                                      message_id="<r@x>"), source="test")
    with session_scope(world.engine) as session:
        with pytest.raises(NotFound, match="nobody@example.net"):
            attach_inbound(session, stray.inbound_id, subscriber="nobody@example.net", actor="test")
        with pytest.raises(NotFound, match="1999-01"):
            attach_inbound(session, stray.inbound_id, subscriber="ben@example.org", issue="1999-01", actor="test")
        with pytest.raises(StateError, match=rf"inbound #{reply.inbound_id}: .*not unmatched"):
            attach_inbound(session, reply.inbound_id, subscriber="ben@example.org", actor="test")
        with pytest.raises(NotFound, match="#9999"):
            attach_inbound(session, 9999, subscriber="ben@example.org", actor="test")
        with pytest.raises(StateError, match="nonsense"):
            list_inbound(session, kind="nonsense")
        with pytest.raises(NotFound, match="9999"):
            show_inbound(session, world.links, 9999)
        assert session.exec(select(Feedback).where(Feedback.inbound_id == stray.inbound_id)).first() is None
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "inbound.attach")).first() is None


def test_attach_refuses_auto_replies_and_erased_subscribers(world: World) -> None:
    """An attached auto-reply would lose its feedback at the next reprocess; an erased person sends nothing."""
    import pytest

    from bulletin.audience.lifecycle import erase
    from bulletin.errors import StateError
    from bulletin.inbound import attach_inbound

    auto = ingest(world.engine, world.settings, mail(to="x@news.example.org", frm="dee@example.net",
                                                     headers={"Auto-Submitted": "auto-replied"}), source="test")
    stray = ingest(world.engine, world.settings, mail(to="x@news.example.org", frm="dee@example.net",
                                                      message_id="<s@x>"), source="test")
    assert (auto.classification, stray.classification) == ("auto_reply", "unmatched")
    sid = world.subscribers["ben@example.org"]
    with session_scope(world.engine) as session:
        erase(session, sid, source="cli", actor="test")
    with session_scope(world.engine) as session:
        with pytest.raises(StateError, match=rf"inbound #{auto.inbound_id}: it is auto_reply, not unmatched"):
            attach_inbound(session, auto.inbound_id, subscriber="carl@example.org", actor="test")
        with pytest.raises(StateError, match=f"subscriber '#{sid}' was erased"):
            attach_inbound(session, stray.inbound_id, subscriber=f"#{sid}", actor="test")
        assert session.exec(select(Feedback)).first() is None


def test_attach_by_id_takes_the_issue_from_the_subject_unless_given(world: World) -> None:
    from bulletin.inbound import attach_inbound

    sid = world.subscribers["carl@example.org"]
    stray = ingest(world.engine, world.settings, mail(to="x@news.example.org", frm="carl.home@example.net",
                                                      subject="Re: " + ISSUE_SUBJECT + " [tell-us]"), source="test")
    with session_scope(world.engine) as session:
        view = attach_inbound(session, stray.inbound_id, subscriber=f"#{sid}", actor="staff:ed@example.org")
        row = session.get(InboundMessage, stray.inbound_id)
        assert (view.subscriber_id, view.issue, view.block) == (sid, "2016-06", "tell-us")
        assert row is not None and (row.classification, row.subscriber_id, row.issue_id) == (
            "reply", sid, world.issue_id)


def test_two_people_attaching_one_message_at_once_get_one_feedback_and_one_refusal(world: World) -> None:
    """On PostgreSQL the second attach waits for the first's row lock, then sees a reply (SQLite has one writer)."""
    import threading

    import pytest
    from sqlmodel import Session

    from bulletin.errors import StateError
    from bulletin.inbound import attach_inbound

    if world.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite lets one writer in at a time")
    stray = ingest(world.engine, world.settings, mail(to="x@news.example.org", frm="dee@example.net"), source="test")
    second: list[BaseException] = []

    def attach_too() -> None:
        try:
            with session_scope(world.engine) as session:
                attach_inbound(session, stray.inbound_id, subscriber="carl@example.org", actor="staff:b@example.org")
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            second.append(exc)

    with Session(world.engine) as first:
        attach_inbound(first, stray.inbound_id, subscriber="ben@example.org", actor="staff:a@example.org")
        other = threading.Thread(target=attach_too)
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive(), "the second attach did not wait for the first one's row lock"
        first.commit()
    other.join(timeout=30)
    assert len(second) == 1 and isinstance(second[0], StateError) and "it is reply" in str(second[0])
    with session_scope(world.engine) as session:
        (fb,) = session.exec(select(Feedback).where(Feedback.inbound_id == stray.inbound_id)).all()
        assert (fb.subscriber_id, fb.attached_by) == (world.subscribers["ben@example.org"], "staff:a@example.org")
        assert len(session.exec(select(AuditEntry).where(AuditEntry.action == "inbound.attach")).all()) == 1


def test_staff_and_attach_read_a_reference_to_a_person_the_same_way(world: World) -> None:
    """`#id` was parsed twice (staff.resolve and attach), and the two disagreed: padding, non-ASCII
    digits, a number past int()'s 4,300-digit limit (a ValueError, a 500 in the console)."""
    from sqlmodel import Session

    from bulletin.audience.staff import resolve
    from bulletin.errors import NotFound
    from bulletin.inbound import attach_inbound

    stray = ingest(world.engine, world.settings, mail(to="x@news.example.org", frm="dee@example.net"), source="test")
    ben = world.subscribers["ben@example.org"]
    expected = {f"#{ben}": ben, f"  #{ben} ": ben, " Ben@Example.org ": ben, "#0": None, "#-1": None,
                "#" + "9" * 30: None, "#" + "9" * 5000: None, "#\u0663": None, "#": None}

    def by_staff(ref: str) -> int | None:
        with Session(world.engine) as session:
            try:
                return resolve(session, ref).id
            except NotFound:
                return None

    def by_attach(ref: str) -> int | None:
        with Session(world.engine) as session:
            try:
                return attach_inbound(session, stray.inbound_id, subscriber=ref, actor="test").subscriber_id
            except NotFound as exc:
                assert f"inbound #{stray.inbound_id}" in str(exc) and len(str(exc)) < 200
                return None
            finally:
                session.rollback()

    assert {ref: by_staff(ref) for ref in expected} == expected
    assert {ref: by_attach(ref) for ref in expected} == expected
