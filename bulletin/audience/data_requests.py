"""Export and erase on request: the footer link asks, a fresh single-use link in the mailbox acts.

The preferences link sits in every bulletin and never expires, so whoever
holds a forwarded bulletin holds it too. It may change list choices and
unsubscribe (the person can undo both), but it cannot take or destroy data:
it only queues a mail to the address with a fresh link that works for 24
hours and once. The link's token names a `DataRequest` row; using it stamps
`used_at` in the same transaction as the export or erase, so a replay, a
forwarded copy or a link of an erased person does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from bulletin.audience.access import subject_access
from bulletin.audience.addresses import mask_address
from bulletin.audience.lifecycle import erase, record_event
from bulletin.audience.links import DATA_REQUEST_MAX_AGE, Links
from bulletin.audience.notices import queue_notice
from bulletin.audience.optin import ACTOR, SOURCE
from bulletin.errors import TokenError
from bulletin.messenger import Notice
from bulletin.models import DataRequest, Subscriber, utcnow

KINDS = ("export", "erase")
MAX_OPEN = 3  # unused links per person and kind: more requests within a day queue no more mail


@dataclass(frozen=True)
class OpenRequest:
    """A mailed link that still works, as its page shows it before the button is pressed."""

    request_id: int
    subscriber_id: int
    kind: str
    masked_email: str


def request_link(session: Session, links: Links, sub: Subscriber, kind: str, *, ip: str | None,
                 user_agent: str | None) -> bool:
    """Queue a mail with a fresh `kind` link to the person's own address; False when too many are open."""
    if kind not in KINDS:
        raise ValueError(f"unknown data request {kind!r}")
    assert sub.id is not None and sub.email is not None
    since = utcnow() - timedelta(seconds=DATA_REQUEST_MAX_AGE)
    open_rows = session.exec(select(DataRequest.id).where(
        DataRequest.subscriber_id == sub.id, DataRequest.kind == kind, DataRequest.used_at.is_(None),  # type: ignore[union-attr]
        DataRequest.created_at > since)).all()
    if len(open_rows) >= MAX_OPEN:
        return False
    row = DataRequest(subscriber_id=sub.id, kind=kind)
    session.add(row)
    session.flush()
    assert row.id is not None
    queue_notice(session, _notice(links, sub.email, kind, row.id), kind=kind, subscriber_id=sub.id)
    record_event(session, sub.id, f"{kind}_requested", source=SOURCE, actor=ACTOR, ip=ip, user_agent=user_agent)
    return True


def _notice(links: Links, email: str, kind: str, request_id: int) -> Notice:
    url = links.data_request_url(kind, request_id)
    what = ("a copy of everything we hold about you" if kind == "export"
            else "to erase everything we hold about you and stop all bulletins")
    text = (
        f"Hello,\n\nSomeone, probably you, asked from the bulletin preferences page {what}.\n\n"
        f"Open this link within 24 hours and press the button (it works once):\n\n{url}\n\n"
        "If you did not ask, ignore this message: nothing will happen.\n"
    )
    subject = "Your bulletin data" if kind == "export" else "Confirm: erase your bulletin data"
    return Notice(to=email, subject=subject, text=text)


def open_request(session: Session, links: Links, kind: str, token: str) -> OpenRequest:
    """What a mailed link is for, without using it; TokenError when forged, expired, used or of an erased person."""
    request_id = links.parse_data_request_token(kind, token)
    row = session.get(DataRequest, request_id)
    if row is None or row.kind != kind or row.used_at is not None:
        raise TokenError("this link has already been used")
    sub = session.get(Subscriber, row.subscriber_id)
    if sub is None or sub.email is None or sub.erased_at is not None:
        raise TokenError("this link is no longer valid")
    return OpenRequest(request_id, row.subscriber_id, kind, mask_address(sub.email))


def _use(session: Session, links: Links, kind: str, token: str) -> OpenRequest:
    """Stamp the request used; the conditional UPDATE makes two simultaneous presses use it once."""
    req = open_request(session, links, kind, token)
    used = session.exec(update(DataRequest).where(  # type: ignore[call-overload]
        DataRequest.id == req.request_id, DataRequest.used_at.is_(None)).values(used_at=utcnow()))  # type: ignore[union-attr]
    if used.rowcount != 1:
        raise TokenError("this link has already been used")
    return req


def export_by_link(session: Session, links: Links, token: str, *, ip: str | None,
                   user_agent: str | None) -> dict[str, Any]:
    """Everything held about the person, once per mailed link."""
    req = _use(session, links, "export", token)
    record_event(session, req.subscriber_id, "exported", source=SOURCE, actor=ACTOR, ip=ip, user_agent=user_agent)
    return subject_access(session, req.subscriber_id)


def erase_by_link(session: Session, links: Links, token: str) -> int:
    """Right to erasure from a mailed link; a replayed link raises TokenError and changes nothing.

    Returns the subscriber's id, so the shell can also remove their copies from the outbox.
    """
    req = _use(session, links, "erase", token)
    erase(session, req.subscriber_id, source=SOURCE, actor=ACTOR)
    return req.subscriber_id
