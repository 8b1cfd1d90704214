"""The report over what the real inbound pipeline writes: the stages must agree on issue attribution."""


from bulletin.audience.lifecycle import unsubscribe
from bulletin.db import session_scope
from bulletin.inbound import ingest
from bulletin.models import Delivery, Send, utcnow
from bulletin.report import issue_report
from tests.inbound.conftest import ISSUE_SUBJECT, World, arf, dsn, mail, world  # noqa: F401 - fixture


def _sent_to_everyone(w: World) -> None:
    with session_scope(w.engine) as s:
        send = Send(issue_id=w.issue_id, list_id=w.list_ids[0], status="done")
        s.add(send)
        s.flush()
        for sid in w.subscribers.values():
            s.add(Delivery(issue_id=w.issue_id, subscriber_id=sid, send_id=send.id, state="sent",
                           message_id=w.links.message_id(sid, w.issue_id), sent_at=utcnow(),
                           smtp_code=250))


def test_reply_auto_reply_bounce_complaint_and_unsubscribe_land_in_the_report(world: World) -> None:  # noqa: F811
    _sent_to_everyone(world)
    amina, ben, carl = (world.subscribers[a] for a in ("amina@example.gov.uk", "ben@example.org",
                                                       "carl@example.org"))
    reply_to = world.links.reply_address(amina, world.issue_id)
    inbound = [
        mail(to=reply_to, subject=f"Re: {ISSUE_SUBJECT} [tell-us]", message_id="<r1@client.example.org>"),
        mail(to=reply_to, subject="Out of Office: away until Monday", message_id="<oo1@client.example.org>",
             headers={"Auto-Submitted": "auto-replied"}),
        dsn(to=world.links.bounce_address(carl, world.issue_id), recipient="carl@example.org", status="5.1.1"),
        arf(world.links.message_id(ben, world.issue_id),
            world.links.unsubscribe_mailto(ben, world.list_ids[0]).removeprefix("mailto:")),
    ]
    classes = [ingest(world.engine, world.settings, raw, source="test").classification for raw in inbound]
    assert classes == ["reply", "auto_reply", "bounce", "complaint"]
    with session_scope(world.engine) as s:
        unsubscribe(s, amina, world.list_ids[1], source="web", actor="amina", issue_id=world.issue_id)

    with session_scope(world.engine) as s:
        r = issue_report(s, "2016-06")
    assert (r.recipients, r.sent, r.failed, r.deferred) == (3, 3, 0, 0)
    assert (r.hard_bounces, r.soft_bounces) == (1, 0)
    assert r.complaints == 1  # one person, though the complaint left two lists
    assert r.unsubscribes == 1
    assert r.auto_replies == 1
    assert r.replies == 1
    assert {b.anchor: b.replies for b in r.replies_by_block} == {"payroll-merger": 0, "tell-us": 1}
