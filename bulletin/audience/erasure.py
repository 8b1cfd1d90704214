"""The mail side of the right to erasure.

An erased person's replies, bounces and complaints are stored by the inbound
stage with their address and words in them. Erasure must reach those rows too,
or `bulletin subscribers erase` would be a promise the database does not keep.
Called only from `lifecycle.erase`, inside its transaction; the rows stay (the
counts in reports stay right), their personal content goes.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, select

from bulletin.models import Bounce, Delivery, Evidence, Feedback, InboundMessage, Send

ERASED = "(erased)"


def scrub_mail(session: Session, subscriber_id: int) -> None:
    """Blank the content of inbound mail, feedback and bounce diagnostics matched to this person."""
    session.exec(
        update(Feedback).where(Feedback.subscriber_id == subscriber_id).values(
            from_address=ERASED, subject=ERASED, visible_text="", full_text="", attachments=[])
    )
    session.exec(
        update(InboundMessage).where(InboundMessage.subscriber_id == subscriber_id).values(
            raw=b"", envelope_from=None, error=None)
    )
    session.exec(update(Bounce).where(Bounce.subscriber_id == subscriber_id).values(diagnostic=""))
    session.exec(update(Evidence).where(Evidence.subscriber_id == subscriber_id).values(address=ERASED, diagnostic=""))


def scrub_delivery(session: Session, subscriber_id: int, address: str) -> None:
    """Blank the relay's words about this person: an SMTP reply quotes the address (`550 5.1.1 <a@b>`)."""
    session.exec(update(Delivery).where(Delivery.subscriber_id == subscriber_id).values(last_error=None))
    if not address:
        return
    for send in session.exec(select(Send).where(Send.pause_reason.contains(address))).all():
        send.pause_reason = (send.pause_reason or "").replace(address, ERASED)
        session.add(send)
