"""ingest(): store first, then classify, match and act; nothing lost, nothing guessed."""

from __future__ import annotations

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.inbound import ingest, reprocess
from bulletin.models import Feedback, InboundMessage
from tests.inbound.conftest import ISSUE_SUBJECT, World, mail


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
