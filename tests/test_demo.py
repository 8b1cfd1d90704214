"""`bulletin demo` end to end: the figures it prints must be what happened."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from bulletin.audience.subscribers import confirmed_subscribers, get_list
from bulletin.cli import app
from bulletin.db import make_engine
from bulletin.demo import run_demo
from bulletin.demo.run import FEEDBACK_BLOCK, SAMPLE_LIST
from bulletin.errors import BulletinError
from bulletin.models import Delivery, Feedback, Subscriber, Subscription
from bulletin.statuses import DeliveryState, SubscriptionState


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    return run_demo(tmp_path_factory.mktemp("demo") / "ws")


def _recipients(outbox: Path) -> list[str]:
    return [parseaddr(str(message_from_bytes(p.read_bytes(), policy=policy.default)["To"]))[1]
            for p in outbox.iterdir()]


def test_every_sample_subscriber_got_exactly_one_message(demo):
    sent_to = _recipients(demo.outbox)
    engine = make_engine(demo.settings.effective_database_url, address_key=demo.settings.address_key)
    with Session(engine) as s:
        listed = {email for _, email, _ in confirmed_subscribers(s, int(get_list(s, SAMPLE_LIST).id or 0))}
        sent_rows = s.exec(select(Delivery).where(Delivery.state == DeliveryState.SENT)).all()
    # The bounced and complaining people are no longer confirmed, so compare with the ledger too.
    assert len(sent_to) == len(set(sent_to)) == len(sent_rows) == demo.report.sent
    assert listed < set(sent_to)
    assert len(set(sent_to) - listed) == 2  # the hard bounce and the complaint


def test_reply_is_feedback_on_the_we_want_to_hear_from_you_block(demo):
    engine = make_engine(demo.settings.effective_database_url, address_key=demo.settings.address_key)
    with Session(engine) as s:
        feedback = s.exec(select(Feedback)).all()
    assert len(feedback) == 1
    assert feedback[0].block_anchor == FEEDBACK_BLOCK
    assert feedback[0].visible_text.startswith("We would value help finding partners")
    assert "wrote:" not in feedback[0].visible_text
    by_block = {b.anchor: b.replies for b in demo.report.replies_by_block}
    assert by_block[FEEDBACK_BLOCK] == 1 and sum(by_block.values()) == 1


def test_bounced_and_complaining_subscribers_changed_state(demo):
    results = {r.classification: r for r in demo.inbound}
    assert set(results) == {"reply", "auto_reply", "bounce", "complaint"}
    engine = make_engine(demo.settings.effective_database_url, address_key=demo.settings.address_key)
    with Session(engine) as s:
        def states(email: str) -> set[str]:
            sub = s.exec(select(Subscriber).where(Subscriber.email == email)).one()
            return {x.state for x in s.exec(select(Subscription).where(Subscription.subscriber_id == sub.id))}, sub

        bounced, _ = states(results["bounce"].subscriber)
        complained, who = states(results["complaint"].subscriber)
    assert bounced == {SubscriptionState.BOUNCED}
    assert complained == {SubscriptionState.COMPLAINED} and who.suppressed
    assert (demo.report.hard_bounces, demo.report.complaints, demo.report.auto_replies) == (1, 1, 1)


def test_demo_refuses_a_workspace_that_already_has_a_database(demo):
    with pytest.raises(BulletinError, match="already holds a bulletin database"):
        run_demo(demo.workspace)


def test_demo_command_prints_the_report_and_where_to_look(tmp_path):
    result = CliRunner().invoke(app, ["demo", str(tmp_path / "ws")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Where to look" in result.output and "Replies by block" in result.output
    assert "we-want-to-hear-from-you" in result.output
