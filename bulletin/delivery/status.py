"""The ORM side of `bulletin status`: an issue's sends as rows, and `issue_status` on a session.

The figures themselves (counts by state, the last minute's rate, the errors,
each send's state) are in `readout`, in driver SQL, so that `bulletin status`
can read them without SQLAlchemy (see `bulletin.sqlread`); `issue_status` runs
the same text on the caller's session. Its own module, apart from `service`,
so that the console's issue page does not load the send engine, messenger and
render. `service` re-exports `issue_status` and `IssueStatus`, and `ledger` the
send readers, so their callers are unchanged.

Every function takes the caller's Session and never commits.
"""

from __future__ import annotations

from sqlmodel import Session, select

from bulletin.delivery.issues import get_issue
from bulletin.delivery.readout import IssueStatus as IssueStatus
from bulletin.delivery.readout import read_status
from bulletin.errors import NotFound, StateError
from bulletin.models import Send, id_of, utcnow
from bulletin.sqlread import SessionReader


def sends_of(session: Session, issue_id: int) -> list[Send]:
    return list(session.exec(select(Send).where(Send.issue_id == issue_id).order_by(Send.id)).all())


def require_send(session: Session, issue_id: int) -> list[Send]:
    sends = sends_of(session, issue_id)
    if not sends:
        raise StateError("this issue has not been sent to any list yet", where=f"issue #{issue_id}")
    return sends


def send_status(session: Session, send_id: int) -> str:
    """The send's status as committed now (the column alone: the sender asks before every claim)."""
    status = session.exec(select(Send.status).where(Send.id == send_id)).first()
    if status is None:
        raise NotFound("no such send", where=f"send #{send_id}")
    return status


def issue_sends(session: Session, slug: str) -> tuple[int, list[Send]]:
    """The published issue's id and its sends, oldest first; a StateError when it was never sent."""
    record = get_issue(session, slug)
    return id_of(record), require_send(session, id_of(record))


def issue_status(session: Session, slug: str) -> IssueStatus:
    """Counts by state, sent in the last minute, each send's state and the commonest errors of one issue."""
    return read_status(SessionReader(session), slug, utcnow())
