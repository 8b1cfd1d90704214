"""What a bounce, a complaint or an unsubscribe mail does to the subscriber.

Every change goes through the audience lifecycle API, which writes the
consent event. Bounce rows are ours: a hard bounce marks the subscriptions
bounced at once; soft bounces score inside a sliding window (so old ones expire)
and mark them bounced when the score reaches the threshold.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import Message

from sqlalchemy import delete, func
from sqlmodel import Session, select

from bulletin.audience.lifecycle import complain, mark_bounced, record_event, unsubscribe
from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.inbound.acting.match import Match, match_address, match_message_ids
from bulletin.inbound.reading.addresses import AddressTokens
from bulletin.inbound.reading.classify import Classification
from bulletin.inbound.reading.parse import header
from bulletin.inbound.reading.reports import BounceRecipient, arf_complaint, original_headers
from bulletin.models import Bounce, InboundMessage, IssueRecord, MailingList, Subscriber, utcnow

SOURCE = "inbound"


def actor_of(row: InboundMessage) -> str:
    return f"inbound #{row.id} {row.message_id}"[:200]


def original_match(session: Session, msg: Message, links: Links) -> Match | None:
    """The subscriber and issue of the returned original message, from our signed Message-ID."""
    original = original_headers(msg)
    if original is None:
        return None
    return match_message_ids(session, links, header(original, "Message-ID"))


def apply_bounces(session: Session, settings: Settings, links: Links, row: InboundMessage, msg: Message,
                  tokens: AddressTokens, cls: Classification) -> list[tuple[BounceRecipient, Match | None]]:
    """Store a Bounce row per matched recipient and act on it; returns each recipient with its match."""
    replay = clear_bounces(session, row)
    recipients = list(cls.bounces)
    if tokens.forged:
        return [(r, None) for r in recipients]
    verp = _verp_match(session, tokens) or original_match(session, msg, links)
    if verp is not None and not recipients:
        subscriber = session.get(Subscriber, verp.subscriber_id)
        # A VERP bounce we cannot read: count it as soft, the threshold decides.
        recipients = [BounceRecipient((subscriber.email if subscriber else "") or "", False, "", "unreadable")]
    out = []
    for i, rcpt in enumerate(recipients):
        found = verp if (verp is not None and (i == 0 or len(recipients) == 1)) else None
        found = found or match_address(session, rcpt.address)
        if found is not None:
            _record_bounce(session, settings, row, rcpt, found, replay=replay)
        out.append((rcpt, found))
    return out


def _verp_match(session: Session, tokens: AddressTokens) -> Match | None:
    if tokens.bounce is None:
        return None
    subscriber = session.get(Subscriber, tokens.bounce[0])
    if subscriber is None or not subscriber.email:
        return None
    issue = session.get(IssueRecord, tokens.bounce[1])
    return Match(tokens.bounce[0], issue.id if issue else None, "bounce-token")


def clear_bounces(session: Session, row: InboundMessage) -> bool:
    """Reprocessing replaces this message's Bounce rows; True when there were some (a replay)."""
    if row.processed_at is None:
        return False  # first run: nothing to replace, spare the queries
    count = session.exec(select(func.count()).select_from(Bounce).where(Bounce.inbound_id == row.id)).one()
    if count:
        session.exec(delete(Bounce).where(Bounce.inbound_id == row.id))  # type: ignore[call-overload]
    return bool(count)


def _record_bounce(session: Session, settings: Settings, row: InboundMessage, rcpt: BounceRecipient,
                   found: Match, *, replay: bool) -> None:
    record_bounce(session, settings, found.subscriber_id, issue_id=found.issue_id, permanent=rcpt.permanent,
                  status=rcpt.status, diagnostic=rcpt.diagnostic, source=SOURCE, actor=actor_of(row),
                  inbound_id=row.id, replay=replay)


def record_bounce(session: Session, settings: Settings, subscriber_id: int, *, issue_id: int | None,
                  permanent: bool, status: str, diagnostic: str, source: str, actor: str,
                  inbound_id: int | None = None, delivery_id: int | None = None, replay: bool = False) -> None:
    """The one bounce policy: store the evidence, then a hard bounce or enough soft ones mark the person bounced.

    Inbound DSNs and recipients refused at RCPT TO by our own relay both come here,
    so there is one rule for when a subscription ends.
    """
    bounce = Bounce(subscriber_id=subscriber_id, issue_id=issue_id, inbound_id=inbound_id,
                    delivery_id=delivery_id, permanent=permanent, status_code=status[:32],
                    diagnostic=diagnostic[:1000])
    session.add(bounce)
    session.flush()
    where = {"inbound_id": inbound_id} if inbound_id is not None else {"delivery_id": delivery_id}
    detail = {**where, "status": status, "diagnostic": diagnostic[:300]}
    if permanent:
        mark_bounced(session, subscriber_id, source=source, actor=actor,
                     issue_id=issue_id, detail={**detail, "reason": "hard bounce"})
        return
    score = soft_score(session, settings, subscriber_id)
    if not replay:
        record_event(session, subscriber_id, "soft_bounce", source=source, actor=actor,
                     issue_id=issue_id, detail={**detail, "score": score})
    if score >= settings.soft_bounce_threshold:
        mark_bounced(session, subscriber_id, source=source, actor=actor, issue_id=issue_id,
                     detail={**detail, "reason": f"{score} soft bounces in {settings.soft_bounce_window_days} days"})


def soft_score(session: Session, settings: Settings, subscriber_id: int) -> int:
    """Soft bounces inside the window: older ones no longer count."""
    since = utcnow() - timedelta(days=settings.soft_bounce_window_days)
    stmt = (select(func.count()).select_from(Bounce)
            .where(Bounce.subscriber_id == subscriber_id, Bounce.permanent == False, Bounce.at >= since))  # noqa: E712
    return int(session.exec(stmt).one())


def apply_complaint(session: Session, links: Links, row: InboundMessage, msg: Message,
                    tokens: AddressTokens, cls: Classification) -> Match | None:
    """Unsubscribe the complainant from every list and suppress the address."""
    if tokens.forged:
        return None
    found = _verp_match(session, tokens) or _report_sender_match(session, msg, links)
    found = found or original_match(session, msg, links)
    for address in cls.complaint_addresses:
        found = found or match_address(session, address)
    if found is not None:
        complain(session, found.subscriber_id, source=SOURCE, actor=actor_of(row), issue_id=found.issue_id,
                 detail={"inbound_id": row.id, "feedback_type": cls.feedback_type})
    return found


def _report_sender_match(session: Session, msg: Message, links: Links) -> Match | None:
    """ARF's Original-Mail-From is our VERP address when the provider reports it."""
    complaint = arf_complaint(msg)
    if complaint is None or not complaint.original_mail_from:
        return None
    try:
        pair = links.parse_bounce_address(complaint.original_mail_from)
    except Exception:  # noqa: BLE001 - a forged token in a report names nobody
        return None
    return _verp_match(session, AddressTokens(bounce=pair)) if pair else None


def apply_unsubscribe(session: Session, row: InboundMessage, tokens: AddressTokens) -> Match | None:
    """A mail to the List-Unsubscribe mailto address: leave that one list (RFC 2369)."""
    assert tokens.unsubscribe is not None
    subscriber_id, list_id = tokens.unsubscribe
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or not subscriber.email or session.get(MailingList, list_id) is None:
        return None
    unsubscribe(session, subscriber_id, list_id, source=SOURCE, actor=actor_of(row))
    return Match(subscriber_id, None, "unsubscribe-token")
