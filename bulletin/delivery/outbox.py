"""The Maildir outbox after an erasure: the person's messages go too.

Every message bulletin wrote for a subscriber is named from its Message-ID
(`messenger.maildir.maildir_name`), so the ledger says exactly which files
hold their address, name and personal links: the Message-ID a row kept, or
the one derived for it when the message was built. Rows `db compact` folded
into tallies are tried under the Message-ID each send of a compacted issue
derives for the person.
"""

from __future__ import annotations

from sqlmodel import Session, select

from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.messenger.maildir import maildir_name
from bulletin.models import Delivery, DeliveryTally, Send, SubscriberDelivery


def remove_copies(settings: Settings, session: Session, subscriber_id: int) -> int:
    """Delete this subscriber's messages from the outbox (new/, cur/, tmp/); returns how many went."""
    outbox = settings.outbox_path
    if not outbox.is_dir():
        return 0
    removed = 0
    links = Links.for_settings(settings)
    rows = session.exec(select(Delivery.message_id, Delivery.issue_id, Send.list_id)
                        .join(Send, Send.id == Delivery.send_id).where(Delivery.subscriber_id == subscriber_id)).all()
    for kept, issue_id, list_id in [*rows, *_compacted_sends(session, subscriber_id)]:
        message_id = kept or links.for_message(subscriber_id, list_id, issue_id).message_id
        name = maildir_name(message_id)
        for folder in ("new", "cur", "tmp"):
            # cur/ names carry ":2,<flags>", tmp/ names ".<pid>.<thread>"
            for path in (outbox / folder).glob(f"{name}*"):
                if path.name == name or path.name.startswith((f"{name}:", f"{name}.")):
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed


def _compacted_sends(session: Session, subscriber_id: int) -> list[tuple[str, int, int]]:
    """Every send of a compacted issue, as ('', issue, list): `db compact` deleted the rows that said
    who had it, so each is tried under the Message-ID it derives for this person (review finding:
    an erasure after compaction left their messages in the outbox). Only for a person compaction
    counted, and only sends of issues it folded: a few tries each, most finding no file."""
    if session.get(SubscriberDelivery, subscriber_id) is None:
        return []
    compacted = select(DeliveryTally.issue_id).distinct()
    return [("", int(issue_id), int(list_id)) for issue_id, list_id in session.exec(
        select(Send.issue_id, Send.list_id).where(Send.issue_id.in_(compacted)).distinct()).all()]  # type: ignore[attr-defined]
