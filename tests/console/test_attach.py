"""Attaching unmatched mail by hand: `bulletin inbound attach` and the console's button write the same rows."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import select

from bulletin.db import make_engine, session_scope
from bulletin.inbound import ingest, reprocess
from bulletin.models import AuditEntry, Evidence, Feedback, InboundMessage
from tests.conftest import cli_runner
from tests.console.conftest import AMINA, ISSUE_SUBJECT, Sample, token_of
from tests.inbound.conftest import mail

BLOCK = "we-want-to-hear-from-you"


def _stray(sample: Sample, n: int, **headers: str) -> int:
    """A reply to the issue's feedback block from Amina's other address: no token, no Message-ID of ours."""
    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    raw = mail(to="hello@council.example", frm="Amina at home <amina.home@elsewhere.example>",
               subject=f"Re: {ISSUE_SUBJECT} [{BLOCK}]", body="Could the timetable go on the intranet?\n",
               message_id=f"<home-{n}@elsewhere.example>", headers=headers)
    stored = ingest(engine, sample.settings, raw, source="test")
    engine.dispose()
    return stored.inbound_id


def _cli(sample: Sample, *args: str) -> tuple[int, str]:
    s = sample.settings
    env = {"BULLETIN_DATABASE_URL": s.effective_database_url, "BULLETIN_PUBLIC_BASE_URL": s.public_base_url,
           "BULLETIN_SENDING_DOMAIN": s.sending_domain, "COLUMNS": "200"}
    return cli_runner(s, env)(*args)


def _console_attach(c: TestClient, inbound_id: int, who: str):  # type: ignore[no-untyped-def]
    return c.post(f"/admin/inbound/{inbound_id}/attach", data={"subscriber": who, "csrf_token": token_of(c, "/admin")})


def _rows(sample: Sample, inbound_id: int) -> dict[str, object]:
    """Everything an attach writes about one message, with the actor pulled out (it differs by design)."""
    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    with session_scope(engine) as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        fb = session.exec(select(Feedback).where(Feedback.inbound_id == inbound_id)).one()
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "inbound.attach",
                                                      AuditEntry.target.startswith(f"inbound #{inbound_id} "))).all()
        evidence = session.exec(select(Evidence).where(Evidence.inbound_id == inbound_id)).all()
        out: dict[str, object] = {
            "message": (row.status, row.classification, row.subscriber_id, row.issue_id, row.processed_at is not None),
            "feedback": (fb.subscriber_id, fb.issue_id, fb.block_anchor, fb.status, fb.subject, fb.visible_text,
                         fb.from_address),
            "audit": [(a.action, a.target.replace(f"#{inbound_id} ", "#N ")) for a in audit],
            "evidence": len(evidence),
            "actors": {fb.attached_by, *(a.actor for a in audit)},
        }
    engine.dispose()
    return out


def test_cli_and_console_attach_write_the_same_rows_and_both_survive_reprocess(
        sample: Sample, signed_in: Callable[[str | None], TestClient]) -> None:
    by_cli, by_console = _stray(sample, 1), _stray(sample, 2)
    code, out = _cli(sample, "inbound", "attach", str(by_cli), "--subscriber", AMINA)
    assert code == 0, out
    r = _console_attach(signed_in("staff"), by_console, AMINA)
    assert r.status_code == 303, r.text[:300]

    cli_rows, console_rows = _rows(sample, by_cli), _rows(sample, by_console)
    cli_actors, console_actors = cli_rows.pop("actors"), console_rows.pop("actors")
    assert cli_rows == console_rows
    assert cli_rows["feedback"][:3] == (sample.amina_id, cli_rows["message"][3], BLOCK)  # type: ignore[index]
    assert cli_rows["message"][1:3] == ("reply", sample.amina_id)  # type: ignore[index]
    assert cli_rows["audit"] == [("inbound.attach", f"inbound #N -> subscriber #{sample.amina_id}")]
    assert cli_rows["evidence"] == 0
    assert len(cli_actors) == 1 and next(iter(cli_actors)).startswith("cli")  # type: ignore[arg-type]
    assert console_actors == {"staff:staff@council.example"}

    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    reprocess(engine, sample.settings, ids=[by_cli, by_console])
    engine.dispose()
    after_cli, after_console = _rows(sample, by_cli), _rows(sample, by_console)
    assert after_cli["feedback"] == cli_rows["feedback"] and after_console["feedback"] == console_rows["feedback"]
    assert after_cli["message"][1:4] == after_console["message"][1:4] == ("reply", sample.amina_id,  # type: ignore[index]
                                                                          cli_rows["message"][3])  # type: ignore[index]


def test_cli_and_console_refuse_the_same_messages(sample: Sample,
                                                  signed_in: Callable[[str | None], TestClient]) -> None:
    staff = signed_in("staff")
    auto = _stray(sample, 3, **{"Auto-Submitted": "auto-replied"})
    code, out = _cli(sample, "inbound", "attach", str(auto), "--subscriber", AMINA)
    assert code != 0 and f"inbound #{auto}" in out and "not unmatched" in out
    r = _console_attach(staff, auto, AMINA)
    assert r.status_code == 400 and f"inbound #{auto}: it is auto_reply, not unmatched" in r.text

    stray = _stray(sample, 4)
    code, out = _cli(sample, "inbound", "attach", str(stray), "--subscriber", "nobody@elsewhere.example")
    assert code != 0 and "nobody@elsewhere.example" in out
    r = _console_attach(staff, stray, "nobody@elsewhere.example")
    assert r.status_code == 404 and f"inbound #{stray}: no subscriber &#39;nobody@elsewhere.example&#39;" in r.text
    r = _console_attach(staff, stray, "<b>x</b>@elsewhere.example")
    assert r.status_code == 404 and "&lt;b&gt;x&lt;/b&gt;@elsewhere.example" in r.text and "<b>x</b>" not in r.text

    assert _console_attach(staff, stray, AMINA).status_code == 303
    code, out = _cli(sample, "inbound", "attach", str(stray), "--subscriber", AMINA)  # already attached
    assert code != 0 and "reply, not unmatched" in out
    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    with session_scope(engine) as session:
        for inbound_id in (auto, stray):
            assert len(session.exec(select(Feedback).where(Feedback.inbound_id == inbound_id)).all()) == (
                inbound_id == stray)
        assert len(session.exec(select(AuditEntry).where(AuditEntry.action == "inbound.attach")).all()) == 1
    engine.dispose()


def test_an_editor_cannot_attach_so_cannot_look_a_subscriber_up(sample: Sample,
                                                                signed_in: Callable[[str | None], TestClient]) -> None:
    """Attach by #id made feedback showing that person's name and address: the subscriber list, one by one."""
    editor = signed_in("editor")
    page = editor.get("/admin/inbound")
    assert page.status_code == 200 and "/attach" not in page.text
    r = _console_attach(editor, sample.unmatched_id, f"#{sample.amina_id}")
    assert r.status_code == 403 and AMINA not in r.text
    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    with session_scope(engine) as session:
        assert session.exec(select(Feedback).where(Feedback.inbound_id == sample.unmatched_id)).all() == []
        assert session.get(InboundMessage, sample.unmatched_id).classification == "unmatched"  # type: ignore[union-attr]
    engine.dispose()
    assert signed_in("staff").get("/admin/inbound").text.count("/attach") >= 1
