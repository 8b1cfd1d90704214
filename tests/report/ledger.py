"""A generated ledger written straight into the tables, with the figures it must produce.

The expected figures are counted here in Python from what was generated, never
by querying, so the report's SQL is checked against an independent count.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from bulletin.db import session_scope
from bulletin.models import (
    Bounce,
    Delivery,
    Feedback,
    InboundMessage,
    IssueRecord,
    MailingList,
    Send,
    Subscriber,
    SubscriberEvent,
)
from bulletin.render.compiled import BlockRef, Compiled, Template

BLOCKS = (BlockRef("intro", "text", "Welcome"), BlockRef("hear-from-you", "feedback", "We want to hear from you"),
          BlockRef("events", "events", "Events"))
STATES = ("sent",) * 14 + ("deferred", "failed", "queued", "claimed", "cancelled")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class Expected:
    slug: str
    states: dict[str, int] = field(default_factory=dict)
    hard: set[int] = field(default_factory=set)
    soft: set[int] = field(default_factory=set)
    complaints: set[int] = field(default_factory=set)
    unsubscribes: set[int] = field(default_factory=set)
    by_block: dict[str, int] = field(default_factory=dict)
    auto_replies: int = 0
    sent_times: list[datetime] = field(default_factory=list)
    reply_times: list[datetime] = field(default_factory=list)


def compiled(slug: str) -> Compiled:
    empty = Template(("",), (), escape=True)
    return Compiled(slug=slug, title=f"Title {slug}", subject=f"Subject {slug}", preheader="",
                    issue_date="2026-11-02", lists=("shared-services",), html=empty,
                    text=Template(("",), (), escape=False), web_html="", blocks=BLOCKS)


def generate(engine: Engine, *, people: int = 120, seed: int = 7) -> Expected:
    """Two issues to the same people; only the first one's figures are expected."""
    rng = random.Random(seed)
    with session_scope(engine) as s:
        lists = [MailingList(slug=f"l{i}", name=f"L{i}", from_name="X", from_address="news@example.org")
                 for i in (1, 2)]
        s.add_all(lists)
        subs = [Subscriber(email=f"p{i}@example.org", email_hash=hashlib.sha256(f"p{i}".encode()).hexdigest())
                for i in range(people)]
        s.add_all(subs)
        s.flush()
        ours = _issue(s, "ours", lists[0].id)
        other = _issue(s, "other", lists[0].id)
        s.flush()
        expected = Expected(slug="ours")
        for issue, exp in ((ours, expected), (other, Expected(slug="other"))):
            _fill(s, rng, issue, [x.id for x in subs], [x.id for x in lists], exp)
    return expected


def _issue(s, slug: str, list_id: int) -> tuple[IssueRecord, Send]:  # type: ignore[no-untyped-def]
    issue = IssueRecord(slug=slug, title=f"Title {slug}", subject=f"Subject {slug}",
                        compiled=compiled(slug).to_json(), content_hash="0" * 64)
    s.add(issue)
    s.flush()
    send = Send(issue_id=issue.id, list_id=list_id)
    s.add(send)
    s.flush()
    return issue, send


def _fill(s, rng: random.Random, pair, sub_ids: list[int], list_ids: list[int], exp: Expected) -> None:  # type: ignore[no-untyped-def]
    issue, send = pair
    for sid in sub_ids:
        state = rng.choice(STATES)
        exp.states[state] = exp.states.get(state, 0) + 1
        sent_at = T0 + timedelta(minutes=rng.randrange(0, 180)) if state == "sent" else None
        if sent_at:
            exp.sent_times.append(sent_at)
        d = Delivery(issue_id=issue.id, subscriber_id=sid, send_id=send.id, state=state,
                     message_id=f"<{issue.slug}.{sid}@example.org>", sent_at=sent_at)
        s.add(d)
        if state != "sent":
            continue
        roll = rng.random()
        if roll < 0.06:  # hard bounce, sometimes after soft ones
            exp.hard.add(sid)
            for permanent in ([False, True] if rng.random() < 0.5 else [True]):
                s.add(Bounce(subscriber_id=sid, issue_id=issue.id, permanent=permanent))
        elif roll < 0.12:  # soft bounces, twice for some
            exp.soft.add(sid)
            for _ in range(rng.choice((1, 2))):
                s.add(Bounce(subscriber_id=sid, issue_id=issue.id, permanent=False))
        elif roll < 0.16:  # a complaint unsubscribes from every list: one event per list
            exp.complaints.add(sid)
            for lid in list_ids:
                s.add(SubscriberEvent(subscriber_id=sid, list_id=lid, kind="complaint", source="inbound",
                                      issue_id=issue.id, old_state="confirmed", new_state="complained"))
        elif roll < 0.22:
            exp.unsubscribes.add(sid)
            s.add(SubscriberEvent(subscriber_id=sid, list_id=list_ids[0], kind="unsubscribe", source="web",
                                  issue_id=issue.id))
            # a later, unrelated unsubscribe (no issue) must not count
            s.add(SubscriberEvent(subscriber_id=sid, list_id=list_ids[1], kind="unsubscribe", source="web"))
        if rng.random() < 0.3:
            _reply(s, rng, issue, sid, sent_at, exp)
        if rng.random() < 0.08:
            exp.auto_replies += 1
            _inbound(s, issue, sid, "auto_reply", f"ar.{sid}")


def _inbound(s, issue, sid: int, classification: str, key: str) -> InboundMessage:  # type: ignore[no-untyped-def]
    msg = InboundMessage(message_id=f"<{issue.slug}.{key}@example.net>", raw=b"x", sha256="0" * 64,
                         source="demo", classification=classification, subscriber_id=sid, issue_id=issue.id)
    s.add(msg)
    s.flush()
    return msg


def _reply(s, rng: random.Random, issue, sid: int, sent_at: datetime, exp: Expected) -> None:  # type: ignore[no-untyped-def]
    anchor = rng.choice(["hear-from-you", "hear-from-you", "events", None, "gone-block"])
    msg = _inbound(s, issue, sid, "reply", f"r.{sid}")
    at = sent_at + timedelta(minutes=rng.randrange(5, 3000))
    exp.reply_times.append(at)
    key = anchor or ""
    exp.by_block[key] = exp.by_block.get(key, 0) + 1
    s.add(Feedback(inbound_id=msg.id, subscriber_id=sid, issue_id=issue.id, block_anchor=anchor,
                   received_at=at))
