"""Evidence, not verdicts: every bounce, complaint or unsubscribe signal, and whether we can trust it.

A report names addresses and anyone can write one, so a named address alone
proves nothing. A signal is *authenticated* only by something a stranger
cannot make: our signed VERP token in the address the report came to
(`verp-token`), the signed VERP sender or List-Unsubscribe address of the
returned original, whose subscriber is the very recipient the report names
(`report-bounce`, `report-unsubscribe`; our Message-ID and reply address do not
count, since every reply the subscriber writes shows them to others), an
Amazon SES notice whose SNS signature verifies against a configured
certificate (`ses-sns`), or the signed List-Unsubscribe address the message
came to (`unsubscribe-token`). Everything else is kept as unverified evidence, with
the reason, for staff to read; it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select as sa_select
from sqlmodel import Session

from bulletin.audience.addresses import hash_normalised, normalise_address
from bulletin.errors import AddressError
from bulletin.inbound.acting.match import match_address
from bulletin.inbound.reading.addresses import AddressTokens
from bulletin.inbound.reading.classify import BOUNCE, Classification
from bulletin.inbound.reading.report_identity import BOUNCE_TOKEN, UNSUBSCRIBE_TOKEN, ReportIdentity
from bulletin.inbound.reading.reports import BounceRecipient
from bulletin.models import IssueRecord, MailingList, Subscriber

BOUNCE_KIND, COMPLAINT_KIND, UNSUBSCRIBE_KIND = "bounce", "complaint", "unsubscribe"
STRONG_MARKS = frozenset({BOUNCE_TOKEN, UNSUBSCRIBE_TOKEN})


@dataclass(frozen=True)
class Signal:
    """One piece of evidence before it is stored: who it names and how (or why not) it is authenticated."""

    kind: str
    address: str
    verified: bool
    auth: str
    subscriber_id: int | None = None
    issue_id: int | None = None
    list_id: int | None = None
    permanent: bool = False
    status: str = ""
    diagnostic: str = ""


def _norm(address: str) -> str:
    try:
        return normalise_address(address)
    except (AddressError, ValueError):
        return address.strip().lower()


def _email(session: Session, subscriber_id: int | None) -> str | None:
    sub = session.get(Subscriber, subscriber_id) if subscriber_id is not None else None
    return _norm(sub.email) if sub is not None and sub.email else None


def _issue(session: Session, issue_id: int | None) -> int | None:
    return issue_id if issue_id is not None and session.get(IssueRecord, issue_id) is not None else None


def _trusted(session: Session, tokens: AddressTokens, identity: ReportIdentity | None) -> tuple[dict[str, tuple[int, int | None]], str]:
    """Subscribers our signed values name: {normalised email: (subscriber_id, issue_id)} and the method.

    Only values that travel in the delivered copy alone authenticate: the VERP sender and the
    List-Unsubscribe address. Our Message-ID and reply address also go out in every reply the
    subscriber writes (In-Reply-To, References, To), so anyone they copied in could put them in a
    forged report; those two only say which issue an authenticated report is about.
    """
    if tokens.bounce is not None:
        email = _email(session, tokens.bounce[0])
        if email:
            return {email: (tokens.bounce[0], _issue(session, tokens.bounce[1]))}, "verp-token"
    marks = identity.verified_marks if identity is not None else ()
    issues: dict[int, int] = {}
    for mark in marks:
        if mark.subscriber_id is not None and mark.issue_id is not None:
            issues.setdefault(mark.subscriber_id, mark.issue_id)
    out: dict[str, tuple[int, int | None]] = {}
    method = ""
    for mark in marks:
        if mark.kind not in STRONG_MARKS or mark.subscriber_id is None:
            continue
        email = _email(session, mark.subscriber_id)
        if email and email not in out:
            out[email] = (mark.subscriber_id, _issue(session, issues.get(mark.subscriber_id)))
            method = method or f"report-{mark.kind}".replace("_", "-")
    return out, method


def _weak_only(identity: ReportIdentity) -> bool:
    """Verified values of ours inside, but only ones a reply shows to whoever the subscriber wrote to."""
    return bool(identity.verified_marks) and all(m.kind not in STRONG_MARKS for m in identity.verified_marks)


def gather(session: Session, tokens: AddressTokens, cls: Classification,
           identity: ReportIdentity | None, *, name: bool = True) -> list[Signal]:
    """Every signal of one message, each marked verified or not (with why); `name=False` leaves the look-up of
    who unverified signals name to the caller (a batch does it once for all its messages)."""
    signals = _gather(session, tokens, cls, identity)
    return name_subscribers(session, signals) if name else signals


def _gather(session: Session, tokens: AddressTokens, cls: Classification,
            identity: ReportIdentity | None) -> list[Signal]:
    if tokens.unsubscribe is not None:
        return [_unsubscribe(session, tokens)]
    if identity is None:
        return []
    kind = BOUNCE_KIND if identity.kind == BOUNCE else COMPLAINT_KIND
    recipients = list(identity.recipients)
    if tokens.forged or identity.forged:
        return [_unverified(session, kind, r, "forged-token") for r in recipients]
    trusted, method = _trusted(session, tokens, identity)
    if cls.detail.get("ses_verified"):
        return [_ses(session, kind, r) for r in recipients]
    if method == "verp-token":
        return _verp(session, kind, recipients, trusted)
    out = []
    lone = next(iter(trusted.values())) if len(trusted) == 1 else None
    why = ("ses-signature-not-verified" if cls.reason.startswith("ses") else
           "recipient-not-the-reports-subscriber" if trusted else
           "only-values-a-reply-shows" if _weak_only(identity) else "nothing-of-ours-in-report")
    for r in recipients:
        hit = trusted.get(_norm(r.address))
        if hit is None and lone is not None and match_address(session, r.address) is None:
            # A redacted or forwarded recipient that names nobody else: the one message of ours it returns.
            hit, lone = lone, None
        if hit is not None:
            out.append(Signal(kind, r.address, True, method, hit[0], hit[1], None, r.permanent, r.status,
                              r.diagnostic))
        else:
            out.append(_unverified(session, kind, r, why))
    if not recipients and len(trusted) == 1:
        # A report about our message that names nobody (a redacted ARF, an unreadable DSN).
        email, (sid, iid) = next(iter(trusted.items()))
        out.append(Signal(kind, email, True, method, sid, iid, None, kind == COMPLAINT_KIND, "", "no recipient named"))
    return out


def _verp(session: Session, kind: str, recipients: list[BounceRecipient],
          trusted: dict[str, tuple[int, int | None]]) -> list[Signal]:
    """The VERP token names the subscriber; the report's recipient lines only say hard or soft."""
    email, (sid, iid) = next(iter(trusted.items()))
    mine = [r for r in recipients if _norm(r.address) == email]
    if not mine and len(recipients) == 1:
        mine = recipients  # forwarded: the report names the final address
    others = [r for r in recipients if r not in mine]
    first = mine[0] if mine else BounceRecipient(email, kind == COMPLAINT_KIND, "", "unreadable report")
    out = [Signal(kind, first.address or email, True, "verp-token", sid, iid, None, first.permanent, first.status,
                  first.diagnostic)]
    return out + [_unverified(session, kind, r, "not-the-verp-subscriber") for r in others]


def _ses(session: Session, kind: str, r: BounceRecipient) -> Signal:
    found = match_address(session, r.address)
    if found is None:
        return _unverified(session, kind, r, "ses-sns: no such subscriber")
    return Signal(kind, r.address, True, "ses-sns", found.subscriber_id, None, None, r.permanent, r.status,
                  r.diagnostic)


def _unverified(session: Session, kind: str, r: BounceRecipient, why: str) -> Signal:
    """Named for staff (who is named is filled in by `name_subscribers`), never acted on."""
    return Signal(kind, r.address, False, why, None, None, None, r.permanent, r.status, r.diagnostic)


def name_subscribers(session: Session, signals: list[Signal]) -> list[Signal]:
    """Fill in which subscriber each unverified signal names, with one query for all of them."""
    keys: dict[int, str] = {}
    for i, s in enumerate(signals):
        if not s.verified and s.subscriber_id is None and "@" in s.address:
            try:
                keys[i] = hash_normalised(normalise_address(s.address))
            except AddressError:
                continue
    if not keys:
        return signals
    table = Subscriber.__table__  # type: ignore[attr-defined]
    stmt = sa_select(table.c.email_hash, table.c.id).where(
        table.c.email_hash.in_(sorted(set(keys.values()))), table.c.email.is_not(None))
    ids = dict(session.connection().execute(stmt).all())  # Core: no ORM work for two columns
    return [replace(s, subscriber_id=ids.get(keys[i])) if i in keys else s for i, s in enumerate(signals)]


def _unsubscribe(session: Session, tokens: AddressTokens) -> Signal:
    assert tokens.unsubscribe is not None
    sid, list_id = tokens.unsubscribe
    email = _email(session, sid)
    if email is None or session.get(MailingList, list_id) is None:
        return Signal(UNSUBSCRIBE_KIND, "", False, "token-names-no-current-subscriber-or-list")
    return Signal(UNSUBSCRIBE_KIND, email, True, "unsubscribe-token", sid, None, list_id, False)
