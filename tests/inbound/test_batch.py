"""ingest_batch(): the group-commit path says and stores what the one-by-one path does."""

from __future__ import annotations

from bulletin.db import session_scope
from bulletin.inbound.acting.batch import RawMail, ingest_batch
from bulletin.inbound.acting.pipeline import describe
from bulletin.models import InboundMessage
from tests.inbound.conftest import ISSUE_SUBJECT, World, dsn, mail


def _mix(world: World) -> list[bytes]:
    amina, ben = world.subscribers["amina@example.gov.uk"], world.subscribers["ben@example.org"]
    reply = mail(to=world.links.reply_address(amina, world.issue_id), subject=f"Re: {ISSUE_SUBJECT} [tell-us]",
                 body="More on payroll, please.\n", message_id="<r1@client.example.org>")
    bounce = dsn(to=world.links.bounce_address(ben, world.issue_id), recipient="ben@example.org", status="5.1.1",
                 message_id="<d1@mx.example.net>")
    unsigned = dsn(to="postmaster@news.example.org", recipient="carl@example.org", status="4.2.2",
                   message_id="<d2@mx.example.net>")
    stranger = mail(to="someone@example.org", frm="stranger@example.net", message_id="<s1@example.net>")
    return [reply, bounce, unsigned, stranger]


def test_batch_results_are_what_describe_reads_back(world: World) -> None:
    results = ingest_batch(world.engine, world.settings, [RawMail(raw, "test") for raw in _mix(world)])
    assert [r.classification for r in results] == ["reply", "bounce", "bounce", "unmatched"]
    assert results[0].feedback_id is not None and results[0].block == "tell-us"
    assert results[1].verified is True and results[2].verified is False
    with session_scope(world.engine) as session:
        for result in results:
            stored = describe(session, session.get(InboundMessage, result.inbound_id))
            for key in ("status", "classification", "subscriber_id", "subscriber", "issue_id", "issue",
                        "feedback_id", "visible_text", "block"):
                assert getattr(stored, key) == getattr(result, key), key


def test_duplicates_in_a_batch_are_described_like_one_by_one(world: World) -> None:
    mix = _mix(world)
    first = ingest_batch(world.engine, world.settings, [RawMail(raw, "test") for raw in mix])
    again = ingest_batch(world.engine, world.settings, [RawMail(raw, "test") for raw in mix + mix[:1]])
    assert all(r.duplicate for r in again) and len(again) == 5
    with session_scope(world.engine) as session:
        for result in again:
            want = describe(session, session.get(InboundMessage, result.inbound_id))
            want.duplicate = True
            assert result.as_dict() == want.as_dict()
    assert [r.inbound_id for r in again] == [r.inbound_id for r in first] + [first[0].inbound_id]


def test_insert_ids_gives_each_row_its_own_id_in_order(world: World) -> None:
    from sqlalchemy import select
    from sqlmodel import Session

    from bulletin.inbound.acting.actions import EVIDENCE_KEY
    from bulletin.inbound.acting.rows import insert_ids
    from bulletin.models import Evidence, utcnow

    first = ingest_batch(world.engine, world.settings, [RawMail(raw, "test") for raw in _mix(world)])[0]
    base = {"inbound_id": first.inbound_id, "kind": "bounce", "subscriber_id": None, "issue_id": None,
            "list_id": None, "status_code": "", "diagnostic": "", "verified": False, "auth": "x", "source": "inbound",
            "at": utcnow()}
    values = [base | {"address": f"{name}@example.org", "permanent": perm}
              for name, perm in [("z", True), ("a", False), ("z", True), ("m", True), ("a", True), ("z", True)]]
    table = Evidence.__table__  # type: ignore[attr-defined]
    with Session(world.engine) as session:
        ids = insert_ids(session, table, values, EVIDENCE_KEY)
        rows = {r.id: (r.address, r.permanent) for r in session.connection().execute(select(table))}
        session.commit()
    assert len(set(ids)) == len(values)
    assert [rows[i] for i in ids] == [(v["address"], v["permanent"]) for v in values]
    assert ids[0] < ids[2] < ids[5]  # alike rows take their ids in the order given


def test_each_processed_message_is_logged_when_logging_is_on(world: World) -> None:
    import io
    import json
    import logging

    from bulletin.logs import configure_logging

    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream)
    try:
        results = ingest_batch(world.engine, world.settings, [RawMail(raw, "test") for raw in _mix(world)])
    finally:
        logging.getLogger("bulletin").removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = [(x["inbound_id"], x["classification"]) for x in lines if x["event"] == "inbound.processed"]
    assert sorted(logged) == sorted((r.inbound_id, r.classification) for r in results)
