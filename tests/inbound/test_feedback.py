"""Feedback workflow: list, show, mark, export, and answering the person by email."""

from __future__ import annotations

import csv
import email
import io
import json
from email import policy

import pytest

from bulletin.db import session_scope
from bulletin.errors import NotFound, StateError
from bulletin.inbound import ingest
from bulletin.inbound.acting.feedback import (
    answer_feedback,
    export_csv,
    list_feedback,
    mark_feedback,
)
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


def test_reply_sends_threaded_answer_and_marks_answered(world: World) -> None:
    fid = _reply(world)
    with session_scope(world.engine) as session:
        view = answer_feedback(session, world.settings, fid, "Thank you, we will cover it.")
    assert view.status == "answered" and view.answered_at
    files = list((world.settings.outbox_path / "new").iterdir())
    assert len(files) == 1
    sent = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert sent["In-Reply-To"] == "<r1@c>" and sent["To"] == "amina@example.gov.uk"
    assert sent["References"].split() == [world.links.message_id(world.subscribers["amina@example.gov.uk"],
                                                                  world.issue_id), "<r1@c>"]
    assert sent["Subject"] == f"Re: {ISSUE_SUBJECT} [tell-us]"


def test_reply_refuses_empty_answer(world: World) -> None:
    fid = _reply(world)
    with session_scope(world.engine) as session, pytest.raises(StateError):
        answer_feedback(session, world.settings, fid, "   ")


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
