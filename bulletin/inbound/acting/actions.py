"""Store each signal as evidence, and let only authenticated evidence change a subscription.

Every change goes through the audience stage (the bounce policy in
`audience.bounces.record_bounce`, complaints and unsubscribes in the lifecycle
API), which writes the consent event. Reprocessing a message updates its
evidence rows in place, so the bounce policy (idempotent per evidence row)
never counts the same report twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import update
from sqlmodel import Session, select

from bulletin.audience.bounces import BouncePolicy, record_bounce
from bulletin.audience.lifecycle import complain, unsubscribe
from bulletin.config import Settings
from bulletin.inbound.acting.evidence import (
    BOUNCE_KIND,
    COMPLAINT_KIND,
    UNSUBSCRIBE_KIND,
    Signal,
    name_subscribers,
)
from bulletin.inbound.acting.match import Match
from bulletin.inbound.acting.rows import InboundRow, insert_ids
from bulletin.models import Bounce, Evidence

SOURCE = "inbound"


def actor_of(row: InboundRow) -> str:
    return f"inbound #{row.id} {row.message_id}"[:200]


@dataclass(frozen=True)
class EvidenceRecord:
    """A stored Evidence row as the acting code reads it (no ORM object needed on the fast path)."""

    id: int
    kind: str
    address: str
    subscriber_id: int | None
    issue_id: int | None
    list_id: int | None
    permanent: bool
    status_code: str
    diagnostic: str
    verified: bool
    auth: str
    # Verified already when this message was last processed, for the same subscriber: its consent
    # action (complaint, unsubscribe) was applied then, and a reprocess must not apply it again to
    # whatever the person has chosen since (a re-subscription, a lifted suppression).
    applied: bool = False


def _values(row: InboundRow, s: Signal) -> dict[str, object]:
    return {"inbound_id": row.id, "kind": s.kind, "address": s.address[:320], "subscriber_id": s.subscriber_id,
            "issue_id": s.issue_id, "list_id": s.list_id, "permanent": s.permanent, "status_code": s.status[:32],
            "diagnostic": s.diagnostic[:1000], "verified": s.verified, "auth": s.auth[:64], "source": SOURCE,
            "at": row.received_at}


# Every column of an evidence row but `at` and `source`, which follow from `inbound_id` (receipt time, "inbound").
EVIDENCE_KEY = ("inbound_id", "kind", "address", "subscriber_id", "issue_id", "list_id", "permanent", "status_code",
                "diagnostic", "verified", "auth")


def _record(evidence_id: int, v: dict[str, object]) -> EvidenceRecord:
    return EvidenceRecord(evidence_id, *(v[k] for k in (  # type: ignore[arg-type]
        "kind", "address", "subscriber_id", "issue_id", "list_id", "permanent", "status_code", "diagnostic",
        "verified", "auth")))


def store_evidence(session: Session, row: InboundRow, signals: list[Signal]) -> list[EvidenceRecord]:
    """One Evidence row per signal (one INSERT for all); a reprocess updates the rows it made last time."""
    values = [_values(row, s) for s in signals]
    if row.processed_at is None:
        if not values:
            return []
        ids = insert_ids(session, Evidence.__table__, values, EVIDENCE_KEY)  # type: ignore[attr-defined]
        return [_record(i, v) for i, v in zip(ids, values, strict=True)]
    old = {(e.kind, e.address.lower()): e for e in session.exec(select(Evidence).where(Evidence.inbound_id == row.id)).all()}
    out = []
    for v in values:
        ev = old.pop((str(v["kind"]), str(v["address"]).lower()), None) or Evidence(kind=str(v["kind"]))
        applied = ev.id is not None and ev.verified and ev.subscriber_id == v["subscriber_id"] and bool(v["verified"])
        for key, value in v.items():
            setattr(ev, key, value)
        session.add(ev)
        session.flush()
        assert ev.id is not None
        out.append(replace(_record(ev.id, v), applied=applied))
    for gone in old.values():
        session.exec(update(Bounce).where(Bounce.evidence_id == gone.id).values(evidence_id=None))  # type: ignore[call-overload]
        session.delete(gone)
    session.flush()
    return out


class DeferredEvidence:
    """Unverified evidence of a batch, named and inserted together when the batch ends (one query, one INSERT)."""

    def __init__(self) -> None:
        self.values: list[dict[str, object]] = []
        self.views: list[dict[str, object]] = []

    def add(self, row: InboundRow, signals: list[Signal]) -> list[dict[str, object]]:
        views = []
        for s in signals:
            self.values.append(_values(row, s))
            views.append(evidence_dict(_record(0, self.values[-1])) | {"evidence_id": None})
        self.views += views
        return views

    def write(self, session: Session) -> None:
        if not self.values:
            return
        named = name_subscribers(session, [Signal(str(v["kind"]), str(v["address"]), False, "") for v in self.values])
        for value, view, signal in zip(self.values, self.views, named, strict=True):
            value["subscriber_id"] = view["subscriber_id"] = signal.subscriber_id
        ids = insert_ids(session, Evidence.__table__, self.values, EVIDENCE_KEY)  # type: ignore[attr-defined]
        for view, evidence_id in zip(self.views, ids, strict=True):
            view["evidence_id"] = evidence_id
        self.values, self.views = [], []


def act_on(session: Session, settings: Settings, row: InboundRow,
           evidence: list[EvidenceRecord]) -> Match | None:
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
        elif ev.applied:
            continue  # a reprocess: this complaint or unsubscribe was applied the first time
        elif ev.kind == COMPLAINT_KIND:
            complain(session, ev.subscriber_id, source=SOURCE, actor=actor_of(row), issue_id=ev.issue_id,
                     detail={"inbound_id": row.id, "evidence_id": ev.id, "auth": ev.auth})
        elif ev.kind == UNSUBSCRIBE_KIND:
            unsubscribe(session, ev.subscriber_id, ev.list_id, source=SOURCE, actor=actor_of(row))
    return found


def evidence_dict(ev: EvidenceRecord | Evidence) -> dict[str, object]:
    """The `--json` view of one piece of evidence."""
    return {"evidence_id": ev.id, "kind": ev.kind, "address": ev.address, "permanent": ev.permanent,
            "temporary": not ev.permanent, "status": ev.status_code, "diagnostic": ev.diagnostic,
            "subscriber_id": ev.subscriber_id, "verified": ev.verified, "auth": ev.auth}
