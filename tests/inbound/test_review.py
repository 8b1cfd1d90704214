"""Unmatched, unverified and quarantined mail is visible (`inbound list`/`show`) and can be attached by hand."""

from __future__ import annotations

import json

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.inbound import ingest, reprocess
from bulletin.models import Feedback
from tests.inbound.conftest import World, dsn, mail, run_cli


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
        assert (fb.subscriber_id, fb.attached_by, fb.id) == (sid, "cli", view["id"])
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
            attach_inbound(session, stray.inbound_id, subscriber="nobody@example.net")
        with pytest.raises(NotFound, match="1999-01"):
            attach_inbound(session, stray.inbound_id, subscriber="ben@example.org", issue="1999-01")
        with pytest.raises(StateError, match="not unmatched"):
            attach_inbound(session, reply.inbound_id, subscriber="ben@example.org")
        with pytest.raises(StateError, match="nonsense"):
            list_inbound(session, kind="nonsense")
        with pytest.raises(NotFound, match="9999"):
            show_inbound(session, world.links, 9999)
        assert session.exec(select(Feedback).where(Feedback.inbound_id == stray.inbound_id)).first() is None
