"""Feedback workflow: list, show, mark, export, and answering the person by email."""

from __future__ import annotations

import csv
import email
import io
import json
import threading
from email import policy
from pathlib import Path

import pytest
from sqlmodel import select

from bulletin.audience.notices import send_due
from bulletin.db import session_scope
from bulletin.errors import NotFound, StateError
from bulletin.inbound import ingest
from bulletin.inbound.acting.feedback import (
    answer_feedback,
    export_csv,
    list_feedback,
    mark_feedback,
    show_feedback,
)
from bulletin.models import QueuedNotice
from tests.inbound.conftest import ISSUE_SUBJECT, World, mail, run_cli


def _reply(world: World, who: str = "amina@example.gov.uk", body: str = "Great issue.\n", mid: str = "<r1@c>") -> int:
    sid = world.subscribers[who]
    raw = mail(to=world.links.reply_address(sid, world.issue_id), frm=who, body=body, message_id=mid,
               subject=f"Re: {ISSUE_SUBJECT} [tell-us]",
               headers={"References": world.links.message_id(sid, world.issue_id)})
    result = ingest(world.engine, world.settings, raw, source="test")
    assert result.feedback_id is not None
    return result.feedback_id


def test_list_filters_by_issue_status_and_tag(world: World) -> None:
    a = _reply(world)
    b = _reply(world, "ben@example.org", mid="<r2@c>")
    with session_scope(world.engine) as session:
        mark_feedback(session, b, status="archived", add_tags=[" Payroll ", "payroll"])
        assert [v.id for v in list_feedback(session, issue="2016-06")] == [a, b]
        assert [v.id for v in list_feedback(session, status="new")] == [a]
        assert [v.id for v in list_feedback(session, tag="payroll")] == [b]
        assert list_feedback(session, tag="payroll")[0].tags == ["payroll"]
        with pytest.raises(NotFound):
            list_feedback(session, issue="nope")
        with pytest.raises(StateError):
            mark_feedback(session, a, status="deleted")


def test_export_csv_quotes_formula_cells(world: World) -> None:
    _reply(world, body="=HYPERLINK(\"http://evil\")\n")
    with session_scope(world.engine) as session:
        rows = list(csv.DictReader(io.StringIO(export_csv(list_feedback(session)))))
    assert rows[0]["visible_text"].startswith("'=") and rows[0]["block"] == "tell-us"


def _sent(world: World) -> list[Path]:
    """The outbox after the notice sender has sent everything due."""
    while send_due(world.engine, world.settings).total:
        pass
    folder = world.settings.outbox_path / "new"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _queued_answers(world: World) -> int:
    with session_scope(world.engine) as session:
        return len(session.exec(select(QueuedNotice).where(QueuedNotice.kind == "answer")).all())


def test_reply_sends_threaded_answer_and_marks_answered(world: World) -> None:
    fid = _reply(world)
    with session_scope(world.engine) as session:
        view = answer_feedback(session, fid, "Thank you, we will cover it.")
    assert view.status == "answered" and view.answered_at and view.answer_state == "queued"
    files = _sent(world)
    assert len(files) == 1
    with session_scope(world.engine) as session:
        assert show_feedback(session, fid).answer_state == "sent"
    sent = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert sent["In-Reply-To"] == "<r1@c>" and sent["To"] == "amina@example.gov.uk"
    assert sent["References"].split() == [world.links.message_id(world.subscribers["amina@example.gov.uk"],
                                                                  world.issue_id), "<r1@c>"]
    assert sent["Subject"] == f"Re: {ISSUE_SUBJECT} [tell-us]"


def _delivered(world: World, who: str, list_id: int, **list_fields: str) -> None:
    """A ledger row saying `who` had the issue through `list_id` (whose fields are set first)."""
    from bulletin.delivery import ledger
    from bulletin.models import Delivery, MailingList

    with session_scope(world.engine) as session:
        ml = session.get(MailingList, list_id)
        assert ml is not None
        for key, value in list_fields.items():
            setattr(ml, key, value)
        session.add(ml)
        send = ledger.open_send(session, world.issue_id, list_id)
        session.add(Delivery(issue_id=world.issue_id, subscriber_id=world.subscribers[who], send_id=send.id,
                             state="sent", message_id="", attempts=1))


def test_an_answer_comes_from_the_list_the_person_had_the_issue_through(world: World) -> None:
    """Not from bulletin@<sending domain>, an address they never saw: from the list's From. Its Reply-To
    is their own reply address for the issue, as in the issue, so a reply to the answer is filed as
    their feedback again (the list's reply_to would take it to a mailbox the inbox may never read).
    With no ledger row to say which list, the notice default stays."""
    amina = world.subscribers["amina@example.gov.uk"]
    _delivered(world, "amina@example.gov.uk", world.list_ids[1], reply_to="Answers <answers@example.gov.uk>")
    fid = _reply(world)
    other = _reply(world, "ben@example.org", mid="<r2@c>")
    with session_scope(world.engine) as session:
        answer_feedback(session, fid, "Thank you.", links=world.links)
        answer_feedback(session, other, "Thank you too.", links=world.links)
    sent = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in _sent(world)]
    by_to = {m["To"]: m for m in sent}
    answer = by_to["amina@example.gov.uk"]
    assert answer["From"] == "Team <workforce@example.gov.uk>"
    assert answer["Reply-To"].addresses[0].addr_spec == world.links.reply_address(amina, world.issue_id)
    assert by_to["ben@example.org"]["From"] == f"bulletin@{world.settings.sending_domain}"
    back = mail(to=answer["Reply-To"].addresses[0].addr_spec, frm="amina@example.gov.uk", body="And more.\n",
                message_id="<r3@c>", subject=f"Re: {answer['Subject']}",
                headers={"In-Reply-To": answer["Message-ID"]})
    result = ingest(world.engine, world.settings, back, source="test")
    assert result.feedback_id is not None
    with session_scope(world.engine) as session:
        again = show_feedback(session, result.feedback_id)
    assert (again.subscriber_id, again.issue) == (amina, "2016-06")


def test_an_answer_names_the_organisation_as_the_issue_did(world: World) -> None:
    """The issue's From is `Team, Organisation` (the list's organisation, else the workspace's); the
    answer said only `Team`, a sender the person had not seen before."""
    from bulletin.audience.links import Links

    _delivered(world, "amina@example.gov.uk", world.list_ids[0], organisation="Northshire Councils")
    _delivered(world, "ben@example.org", world.list_ids[1])
    links = Links(settings=world.settings.model_copy(update={"organisation": "Westshire Partnership"}),
                  signer=world.links.signer)
    fid, other = _reply(world), _reply(world, "ben@example.org", mid="<r2@c>")
    with session_scope(world.engine) as session:
        answer_feedback(session, fid, "Thank you.", links=links)
        answer_feedback(session, other, "Thank you too.", links=links)
    sent = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in _sent(world)]
    by_to = {m["To"]: m for m in sent}
    assert by_to["amina@example.gov.uk"]["From"] == '"Team, Northshire Councils" <shared-services@example.gov.uk>'
    assert by_to["ben@example.org"]["From"] == '"Team, Westshire Partnership" <workforce@example.gov.uk>'
    assert by_to["ben@example.org"]["Reply-To"].addresses[0].display_name == "Team, Westshire Partnership"


@pytest.mark.parametrize(("fields", "name"), [
    # As text, the encoded name was re-folded by the SMTP policy into an encoded word and a bare
    # `O'Neil, MBE`: two mailboxes in From, which DMARC receivers reject (review finding; CPython 121284).
    ({"from_name": "Zoë O'Neil, MBE"}, "Zoë O'Neil, MBE"),
    # A long `Team, Organisation` was re-folded at its spaces, quotes dropped: three mailboxes (review finding).
    ({"from_name": "Shared Services Team", "organisation": "Northshire, Westshire and Eastshire Councils Partnership"},
     "Shared Services Team, Northshire, Westshire and Eastshire Councils Partnership"),
], ids=["accent-and-comma", "long-organisation"])
def test_an_answer_has_one_from_and_one_reply_to_mailbox(world: World, fields: dict[str, str], name: str) -> None:
    _delivered(world, "amina@example.gov.uk", world.list_ids[0], **fields)
    fid = _reply(world)
    with session_scope(world.engine) as session:
        answer_feedback(session, fid, "Thank you.", links=world.links)
    [path] = _sent(world)
    raw = path.read_bytes()
    sent = email.message_from_bytes(raw, policy=policy.default)
    from_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"From:"))
    assert [(a.display_name, a.addr_spec) for a in sent["From"].addresses] == [
        (name, "shared-services@example.gov.uk")], from_line
    assert len(sent["Reply-To"].addresses) == 1, sent["Reply-To"]


def test_reply_refuses_empty_answer_and_a_bad_from_address(world: World) -> None:
    fid = _reply(world)
    with session_scope(world.engine) as session, pytest.raises(StateError, match=f"feedback #{fid}: the answer is empty"):
        answer_feedback(session, fid, "   ")
    with session_scope(world.engine) as session, pytest.raises(StateError, match="--from: not a usable From address"):
        answer_feedback(session, fid, "Thanks", from_addr="Team\r\nBcc: x@evil.example")
    assert _queued_answers(world) == 0 and _sent(world) == []


def test_an_answer_whose_transaction_fails_is_never_sent(world: World) -> None:
    """The answer was sent before the commit: a commit that failed left a mail out and no record of it."""
    fid = _reply(world)
    with pytest.raises(RuntimeError, match="the commit failed"), session_scope(world.engine) as session:
        answer_feedback(session, fid, "Thank you, we will cover it.")
        assert not (world.settings.outbox_path / "new").is_dir() or _no_files(world)
        raise RuntimeError("the commit failed")
    assert _queued_answers(world) == 0 and _sent(world) == []
    with session_scope(world.engine) as session:
        view = show_feedback(session, fid)
        assert (view.status, view.answered_at, view.answer_state) == ("new", "", "")
        answer_feedback(session, fid, "Thank you, we will cover it.")  # and it can be answered after all
    assert len(_sent(world)) == 1


def _no_files(world: World) -> bool:
    return not any((world.settings.outbox_path / "new").iterdir())


def test_a_second_answer_is_refused_and_one_mail_leaves(world: World) -> None:
    fid = _reply(world)
    with session_scope(world.engine) as session:
        answer_feedback(session, fid, "First answer.")
    with session_scope(world.engine) as session, pytest.raises(StateError, match=rf"feedback #{fid}: already answered \("):
        answer_feedback(session, fid, "Second answer.")
    assert _queued_answers(world) == 1
    files = _sent(world)
    assert len(files) == 1 and b"First answer." in files[0].read_bytes()
    with pytest.raises(StateError, match="already answered"):
        run_cli(world, "feedback", "reply", str(fid), "--text", "Third answer.")
    assert len(_sent(world)) == 1


def test_two_people_answering_at_once_send_one_answer(world: World) -> None:
    """The second waits for the first's transaction (row lock on PostgreSQL, the write lock on SQLite),
    then is refused: it must not send while the first is still deciding."""
    fid = _reply(world)
    outcome: list[object] = []

    def second() -> None:
        try:
            with session_scope(world.engine) as session:
                answer_feedback(session, fid, "Second answer.")
            outcome.append("answered")
        except StateError as exc:
            outcome.append(exc)

    with session_scope(world.engine) as session:
        answer_feedback(session, fid, "First answer.")
        other = threading.Thread(target=second)
        other.start()
        other.join(timeout=1.0)  # it cannot finish while this transaction holds the row
        assert other.is_alive() and outcome == []
    other.join(timeout=30)  # this transaction has committed: the second goes on, and is refused
    assert len(outcome) == 1 and isinstance(outcome[0], StateError) and "already answered" in str(outcome[0])
    files = _sent(world)
    assert len(files) == 1 and b"First answer." in files[0].read_bytes()


def test_erasing_a_person_whose_reply_was_answered_drops_the_queued_answer(world: World) -> None:
    """The answer's notice holds their address and words: erasure deletes it, and the feedback lets go of it."""
    from bulletin.audience.lifecycle import erase

    fid = _reply(world)
    with session_scope(world.engine) as session:
        answer_feedback(session, fid, "Thank you, we will cover it.")
    with session_scope(world.engine) as session:
        erase(session, world.subscribers["amina@example.gov.uk"], source="cli", actor="test")
    assert _queued_answers(world) == 0 and _sent(world) == []
    with session_scope(world.engine) as session:
        view = show_feedback(session, fid)
        assert view.answered_at and view.answer_state == ""


def test_cli_feedback_list_show_mark_export(world: World) -> None:
    fid = _reply(world, body="Please write about ICT.\n\n-- \nAmina\n")
    out = run_cli(world, "feedback", "list", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["visible_text"] == "Please write about ICT."
    out = run_cli(world, "feedback", "show", str(fid))
    assert "Please write about ICT." in out.stdout and "tell-us" in out.stdout
    out = run_cli(world, "feedback", "mark", str(fid), "--status", "read", "--tag", "ict", "--json")
    assert json.loads(out.stdout)["tags"] == ["ict"]
    out = run_cli(world, "feedback", "export", "--csv", "-")
    assert "Please write about ICT." in out.stdout and ",read," in out.stdout
    out = run_cli(world, "feedback", "reply", str(fid), "--text", "Thanks!")
    assert out.exit_code == 0 and "answered" in out.stdout


def test_cli_unknown_feedback_is_one_line_error(world: World) -> None:
    from bulletin.errors import BulletinError

    with pytest.raises(BulletinError, match="no feedback #999"):
        run_cli(world, "feedback", "show", "999")


def test_cli_prints_subscriber_text_literally_not_as_markup(world: World) -> None:
    fid = _reply(world, body="[red]urgent[/red] please\n")
    assert "[red]urgent[/red] please" in run_cli(world, "feedback", "show", str(fid)).stdout
    assert "[red]urgent" in run_cli(world, "feedback", "list").stdout
