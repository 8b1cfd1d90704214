"""Sources: MTA pipe on stdin, Maildir, mbox; each prints one JSON line per message with --json."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

from typer.testing import CliRunner

from bulletin.cli import app
from tests.conftest import corpus
from tests.inbound.conftest import World, dsn, mail, run_cli


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_stdin_pipe_with_envelope_recipient_handles_verp_bounce(world: World) -> None:
    sid = world.subscribers["ben@example.org"]
    verp = world.links.bounce_address(sid, world.issue_id)
    raw = dsn(to="ben@example.org", recipient="ben@example.org", status="5.1.1")  # To: is not the VERP address
    out = run_cli(world, "inbound", "--envelope-from", "", "--envelope-to", verp, "--json", input=raw)
    assert out.exit_code == 0, out.output
    [line] = _lines(out.stdout)
    assert (line["classification"], line["subscriber"], line["reason"]) == ("bounce", "ben@example.org", "verp+dsn")
    assert line["bounces"][0]["permanent"] is True  # type: ignore[index]


def test_stdin_reply_json_line_has_visible_text(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    raw = mail(to=world.links.reply_address(sid, world.issue_id), body="Yes!\n\n> quoted issue\n")
    [line] = _lines(run_cli(world, "inbound", "--json", input=raw).stdout)
    assert (line["classification"], line["visible_text"], line["issue"]) == ("reply", "Yes!", "2016-06")


def test_stdin_empty_exits_tempfail_so_the_mta_never_bounces(world: World) -> None:
    assert run_cli(world, "inbound", input=b"").exit_code == 75


def test_stdin_when_database_is_down_exits_tempfail(tmp_path: Path) -> None:
    (tmp_path / "bulletin.toml").write_text('database_url = "postgresql://nobody@127.0.0.1:9/none"\n')
    out = CliRunner().invoke(app, ["-w", str(tmp_path), "inbound"], input=mail(to="a@example.org"))
    assert out.exit_code == 75


def test_maildir_messages_are_stored_then_moved_to_cur_seen(world: World, tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "md", create=True)
    sid = world.subscribers["carl@example.org"]
    box.add(mail(to=world.links.reply_address(sid, world.issue_id), frm="carl@example.org", message_id="<1@c>"))
    box.add(mail(to="x@example.org", frm="stranger@example.net", message_id="<2@c>"))
    box.add(mail(to="x@example.org", frm="stranger@example.net", message_id="<2@c>"))
    box.close()
    out = run_cli(world, "inbound", "--maildir", str(tmp_path / "md"), "--json")
    lines = _lines(out.stdout)
    assert sorted(str(x["classification"]) for x in lines) == ["reply", "unmatched", "unmatched"]
    assert sum(bool(x["duplicate"]) for x in lines) == 1
    assert list((tmp_path / "md" / "new").iterdir()) == []
    assert all(p.name.endswith(":2,S") for p in (tmp_path / "md" / "cur").iterdir())
    again = run_cli(world, "inbound", "--maildir", str(tmp_path / "md"), "--json")
    assert _lines(again.stdout) == []


def test_mbox_corpus_every_message_is_stored(world: World) -> None:
    path = corpus("sisimai", "mailbox", "mbox-0")
    expected = len(mailbox.mbox(str(path)))
    out = run_cli(world, "inbound", "--mbox", str(path), "--json")
    lines = _lines(out.stdout)
    assert len(lines) == expected and all(x["status"] in ("processed", "quarantined") for x in lines)
    assert any(x["classification"] == "bounce" for x in lines)


def test_missing_maildir_is_one_line_error(world: World, tmp_path: Path) -> None:
    import pytest

    from bulletin.errors import NotFound

    with pytest.raises(NotFound):
        run_cli(world, "inbound", "--maildir", str(tmp_path / "nope"))


def test_human_summary_without_json(world: World) -> None:
    out = run_cli(world, "inbound", input=mail(to="x@example.org", frm="stranger@example.net"))
    assert "unmatched: 1" in out.stdout


def test_cli_reprocess_quarantined_prints_json(world: World) -> None:
    raw = b"To: someone@example.org\r\nSubject: Undelivered mail\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <q@x>\r\n\r\nfailed\r\n"
    [first] = _lines(run_cli(world, "inbound", "--json", input=raw).stdout)
    assert first["status"] == "quarantined"
    again = _lines(run_cli(world, "inbound", "reprocess", "--status", "quarantined", "--json").stdout)
    assert [x["message_id"] for x in again] == ["<q@x>"]
    assert _lines(run_cli(world, "inbound", "reprocess", "--status", "stored", "--json").stdout) == []


def test_stdin_forged_bounce_json_says_unverified_with_permanence(world: World) -> None:
    raw = dsn(to="postmaster@news.example.org", recipient="ben@example.org", status="4.2.2")
    [line] = _lines(run_cli(world, "inbound", "--json", input=raw).stdout)
    assert (line["classification"], line["verified"], line["message_id_reused"]) == ("bounce", False, False)
    assert line["bounces"] == [{**line["bounces"][0], "address": "ben@example.org", "permanent": False,  # type: ignore[index]
                                "temporary": True, "verified": False}]
