"""Store each signal as evidence, and let only authenticated evidence change a subscription.

Every change goes through the audience stage (the bounce policy in
`audience.bounces.record_bounce`, complaints and unsubscribes in the lifecycle
API), which writes the consent event. Reprocessing a message updates its
evidence rows in place, so the bounce policy (idempotent per evidence row)
never counts the same report twice.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, select

from bulletin.audience.bounces import BouncePolicy, record_bounce
from bulletin.audience.lifecycle import complain, unsubscribe
from bulletin.config import Settings
from bulletin.inbound.acting.evidence import BOUNCE_KIND, COMPLAINT_KIND, UNSUBSCRIBE_KIND, Signal
from bulletin.inbound.acting.match import Match
from bulletin.models import Bounce, Evidence, InboundMessage

SOURCE = "inbound"


def actor_of(row: InboundMessage) -> str:
    return f"inbound #{row.id} {row.message_id}"[:200]


def store_evidence(session: Session, row: InboundMessage, signals: list[Signal]) -> list[Evidence]:
    """One Evidence row per signal; a reprocess updates the rows it made last time (same kind and address)."""
    old = {(e.kind, e.address.lower()): e
           for e in session.exec(select(Evidence).where(Evidence.inbound_id == row.id)).all()} if row.processed_at else {}
    out = []
    for s in signals:
        ev = old.pop((s.kind, s.address.lower()[:320]), None) or Evidence(inbound_id=row.id, kind=s.kind,
                                                                          at=row.received_at)
        ev.address, ev.subscriber_id, ev.issue_id, ev.list_id = s.address[:320], s.subscriber_id, s.issue_id, s.list_id
        ev.permanent, ev.status_code, ev.diagnostic = s.permanent, s.status[:32], s.diagnostic[:1000]
        ev.verified, ev.auth, ev.source = s.verified, s.auth[:64], SOURCE
        session.add(ev)
        out.append(ev)
    for gone in old.values():
        session.exec(update(Bounce).where(Bounce.evidence_id == gone.id).values(evidence_id=None))  # type: ignore[call-overload]
        session.delete(gone)
    session.flush()
    return out


def act_on(session: Session, settings: Settings, row: InboundMessage, evidence: list[Evidence]) -> Match | None:
    """Apply the verified evidence; returns the subscriber (and issue) it was about, if any."""
    found: Match | None = None
    policy = BouncePolicy.from_settings(settings)
    for ev in evidence:
        if not ev.verified or ev.subscriber_id is None:
            continue
        found = found or Match(ev.subscriber_id, ev.issue_id, ev.auth)
        if ev.kind == BOUNCE_KIND:
            record_bounce(session, ev.subscriber_id, permanent=ev.permanent, source=SOURCE, evidence_id=ev.id,
                          when=row.received_at, policy=policy, actor=actor_of(row), issue_id=ev.issue_id,
                          inbound_id=row.id, status_code=ev.status_code, diagnostic=ev.diagnostic)
        elif ev.kind == COMPLAINT_KIND:
            complain(session, ev.subscriber_id, source=SOURCE, actor=actor_of(row), issue_id=ev.issue_id,
                     detail={"inbound_id": row.id, "evidence_id": ev.id, "auth": ev.auth})
        elif ev.kind == UNSUBSCRIBE_KIND:
            unsubscribe(session, ev.subscriber_id, ev.list_id, source=SOURCE, actor=actor_of(row))
    return found


def evidence_dict(ev: Evidence) -> dict[str, object]:
    """The `--json` view of one piece of evidence."""
    return {"evidence_id": ev.id, "kind": ev.kind, "address": ev.address, "permanent": ev.permanent,
            "temporary": not ev.permanent, "status": ev.status_code, "diagnostic": ev.diagnostic,
            "subscriber_id": ev.subscriber_id, "verified": ev.verified, "auth": ev.auth}
