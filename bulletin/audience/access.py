"""The subject-access export: one answer to "what do you hold about me?" for every shell.

The preference centre hands it to the person (export.json), staff print it
(`bulletin subscribers show --export`); both read it here so they cannot differ.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from bulletin.audience.subscribers import events_of, get_subscriber, subscriptions_of
from bulletin.models import (
    Bounce,
    Delivery,
    Evidence,
    Feedback,
    IssueRecord,
    MailingList,
    SubscriberDelivery,
)


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def subject_access(session: Session, subscriber_id: int) -> dict[str, Any]:
    """Everything held about one person: profile, subscriptions, consent log, mail sent, replies, bounces,
    and every bounce or complaint signal naming them, trusted or not (staff see the untrusted ones too)."""
    sub = get_subscriber(session, subscriber_id)
    slugs = {m.id: m.slug for m in session.exec(select(MailingList)).all()}
    issues = {i.id: i.slug for i in session.exec(select(IssueRecord)).all()}
    return {
        "subscriber": {
            "email": sub.email, "name": sub.name, "organisation": sub.organisation,
            "attributes": sub.attributes, "suppressed": sub.suppressed,
            "created_at": _iso(sub.created_at), "updated_at": _iso(sub.updated_at),
        },
        "subscriptions": [
            {"list": m.slug, "state": s.state, "created_at": _iso(s.created_at),
             "confirmed_at": _iso(s.confirmed_at), "confirmation_sent_at": _iso(s.confirmation_sent_at)}
            for s, m in subscriptions_of(session, subscriber_id)
        ],
        "consent_log": [
            {"at": _iso(e.at), "kind": e.kind, "list": slugs.get(e.list_id), "old_state": e.old_state,
             "new_state": e.new_state, "source": e.source, "actor": e.actor, "ip": e.ip,
             "user_agent": e.user_agent, "issue": issues.get(e.issue_id), "detail": e.detail}
            for e in events_of(session, subscriber_id)
        ],
        "deliveries": [
            {"issue": issues.get(d.issue_id), "state": d.state, "message_id": d.message_id or None,  # None: derived
             "sent_at": _iso(d.sent_at)}
            for d in session.exec(select(Delivery).where(Delivery.subscriber_id == subscriber_id)).all()
        ],
        "compacted_deliveries": _compacted(session, subscriber_id, issues),
        "replies": [
            {"issue": issues.get(f.issue_id), "block": f.block_anchor, "subject": f.subject,
             "text": f.visible_text, "received_at": _iso(f.received_at), "status": f.status}
            for f in session.exec(select(Feedback).where(Feedback.subscriber_id == subscriber_id)).all()
        ],
        "bounces": [
            {"issue": issues.get(b.issue_id), "permanent": b.permanent, "status": b.status_code,
             "diagnostic": b.diagnostic, "at": _iso(b.at)}
            for b in session.exec(select(Bounce).where(Bounce.subscriber_id == subscriber_id)).all()
        ],
        "evidence": _evidence(session, subscriber_id, sub.email, issues),
    }


def _compacted(session: Session, subscriber_id: int, issues: dict[int | None, str]) -> dict[str, Any] | None:
    """What `bulletin db compact` kept of the mail sent to them once their rows were folded into
    tallies: how many, and the last; an export that left it out said we had sent them nothing."""
    kept = session.get(SubscriberDelivery, subscriber_id)
    if kept is None:
        return None
    return {"messages": kept.compacted_sent, "last_issue": issues.get(kept.last_issue_id),
            "last_sent_at": _iso(kept.last_sent_at)}


def _evidence(session: Session, subscriber_id: int, email: str | None,
              issues: dict[int | None, str]) -> list[dict[str, Any]]:
    """Signals matched to the person, and unverified ones that only name their address."""
    naming = Evidence.subscriber_id == subscriber_id
    if email:
        naming = or_(naming, func.lower(Evidence.address) == email.lower())
    return [
        {"kind": e.kind, "issue": issues.get(e.issue_id), "address": e.address, "permanent": e.permanent,
         "status": e.status_code, "diagnostic": e.diagnostic, "verified": e.verified, "auth": e.auth,
         "source": e.source, "at": _iso(e.at)}
        for e in session.exec(select(Evidence).where(naming).order_by(Evidence.id)).all()
    ]
