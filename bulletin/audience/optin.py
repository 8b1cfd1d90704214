"""Signup and confirmation: double opt-in through the audience lifecycle API (any shell may call it).

The caller answers every signup with the same page, so nothing here may make
a difference the requester can see; the `SignupOutcome` is for tests and logs
only. A confirmation mail goes out at most once per address per window, and
a confirmation link only confirms subscriptions that have not been left
since it was issued, so replaying an old link after an unsubscribe does nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from bulletin.audience.addresses import normalise_address
from bulletin.audience.lifecycle import set_state, subscribe
from bulletin.audience.links import CONFIRM_MAX_AGE, Links
from bulletin.audience.subscribers import find_subscriber, get_list, is_suppressed
from bulletin.errors import StateError, TokenError
from bulletin.messenger import Notice, format_address, send_notice
from bulletin.models import MailingList, Subscriber, SubscriberEvent, Subscription, id_of, utcnow
from bulletin.statuses import SubscriptionState as S

SOURCE = "web"
ACTOR = "self"


class SignupOutcome(enum.Enum):
    MAIL_SENT = "mail_sent"
    CONFIRMED_NOW = "confirmed_now"
    NOTHING_TO_DO = "nothing_to_do"
    THROTTLED = "throttled"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class SignupRequest:
    """A checked signup form: single-line fields, known list slugs."""

    email: str
    name: str
    organisation: str
    list_slugs: tuple[str, ...]
    page: str
    ip: str | None = None
    user_agent: str | None = None
    referrer_id: int | None = None


@dataclass
class ConfirmResult:
    confirmed: list[str] = field(default_factory=list)  # list names newly confirmed
    already: list[str] = field(default_factory=list)  # confirmed before this click
    stale: list[str] = field(default_factory=list)  # left after the link was issued


def signup(session: Session, links: Links, req: SignupRequest, *, window: timedelta) -> SignupOutcome:
    """Subscribe `req.email` to the chosen lists: pending plus a confirmation mail, or at once."""
    email = normalise_address(req.email)
    lists = [get_list(session, slug) for slug in req.list_slugs]
    if is_suppressed(session, email):
        return SignupOutcome.SUPPRESSED
    sub = find_subscriber(session, email)
    states = _states(session, sub.id) if sub and sub.id else {}
    direct, pending, reconfirm = _plan(lists, states)
    detail = {"page": req.page, "referrer": req.referrer_id}
    name, org = (req.name, req.organisation) if sub is None else ("", "")  # a form never edits a profile
    common = {"name": name, "organisation": org, "source": SOURCE, "actor": ACTOR, "ip": req.ip,
              "user_agent": req.user_agent, "detail": detail, "resubscribe": True}
    try:
        if direct:
            sub = subscribe(session, email, [id_of(m) for m in direct], confirmed=True, **common)  # type: ignore[arg-type]
        if pending:
            sub = subscribe(session, email, [id_of(m) for m in pending], confirmed=False, **common)  # type: ignore[arg-type]
    except StateError:
        return SignupOutcome.SUPPRESSED
    to_confirm = [m for m in pending + reconfirm]
    if not to_confirm or sub is None:
        return SignupOutcome.CONFIRMED_NOW if direct else SignupOutcome.NOTHING_TO_DO
    assert sub.id is not None
    if not _claim_confirmation_slot(session, sub.id, [id_of(m) for m in to_confirm], window):
        return SignupOutcome.THROTTLED
    send_confirmation(links, email, sub.id, to_confirm, req.referrer_id)
    return SignupOutcome.MAIL_SENT


def signup_lists(session: Session) -> list[MailingList]:
    """Every list a signup form may offer, by name."""
    return list(session.exec(select(MailingList).order_by(MailingList.name)).all())


def list_by_id(session: Session, list_id: int) -> MailingList | None:
    return session.get(MailingList, list_id)


def _states(session: Session, subscriber_id: int) -> dict[int, str]:
    rows = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id)).all()
    return {r.list_id: r.state for r in rows}


def _plan(lists: list[MailingList], states: dict[int, str]) -> tuple[list[MailingList], ...]:
    """(confirm at once, new pending, confirm by mail without a state change) per list."""
    direct: list[MailingList] = []
    pending: list[MailingList] = []
    reconfirm: list[MailingList] = []
    for ml in lists:
        state = states.get(ml.id)  # type: ignore[arg-type]
        if state == S.CONFIRMED:
            continue
        if state is None and not ml.double_opt_in:
            direct.append(ml)  # never for someone who left: they confirm by mail like everyone else
        elif state in (None, S.PENDING, S.UNSUBSCRIBED):
            pending.append(ml)
        else:
            reconfirm.append(ml)  # bounced: the lifecycle keeps the state until they confirm
    return direct, pending, reconfirm


def _claim_confirmation_slot(session: Session, subscriber_id: int, list_ids: list[int],
                             window: timedelta) -> bool:
    """Stamp `confirmation_sent_at`, unless one went to this address within the window."""
    last = session.exec(
        select(func.max(Subscription.confirmation_sent_at)).where(Subscription.subscriber_id == subscriber_id)
    ).one()
    now = utcnow()
    if last is not None and now - last < window:
        return False
    rows = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id,
                                                   Subscription.list_id.in_(list_ids))).all()  # type: ignore[union-attr]
    for row in rows:
        row.confirmation_sent_at = now
        session.add(row)
    session.flush()
    return True


def send_confirmation(links: Links, email: str, subscriber_id: int, lists: list[MailingList],
                      referrer_id: int | None) -> str:
    """Mail the signed confirmation link through the messenger; returns the Message-ID."""
    settings = links.settings
    url = links.confirm_url(subscriber_id, [id_of(m) for m in lists], referrer_id)
    names = ", ".join(m.name for m in lists)
    first = lists[0]
    text = (
        f"Hello,\n\nSomeone, probably you, asked to receive: {names}.\n\n"
        f"To confirm, open this link within {CONFIRM_MAX_AGE // 86400} days:\n\n{url}\n\n"
        "If you did not ask, ignore this message: nothing will be sent to you.\n"
    )
    notice = Notice(to=email, subject=f"Please confirm your subscription: {names}"[:200], text=text,
                    from_addr=format_address(first.from_name, first.from_address), reply_to=first.reply_to)
    return send_notice(settings, notice, what="confirmation mail")


# Confirm ---------------------------------------------------------------------------------------------
def confirm(session: Session, links: Links, token: str, *, ip: str | None,
            user_agent: str | None) -> ConfirmResult:
    """Confirm the lists a link names; TokenError for forged, expired or unusable links."""
    parsed = links.parse_confirm_token(token)
    sid, list_ids, referrer, issued = parsed.subscriber_id, parsed.list_ids, parsed.referrer_id, parsed.issued_at
    sub = session.get(Subscriber, sid)
    if sub is None or sub.email is None or is_suppressed(session, sub.email):
        raise TokenError("this link is no longer valid")
    result = ConfirmResult()
    for list_id in list_ids:
        row = session.exec(select(Subscription).where(Subscription.subscriber_id == sid,
                                                      Subscription.list_id == list_id)).first()
        ml = session.get(MailingList, list_id)
        if row is None or ml is None:
            continue
        if row.state == S.CONFIRMED:
            result.already.append(ml.name)
            continue
        left = _left_at(session, sid, list_id)
        if left is not None and issued <= left.timestamp():
            result.stale.append(ml.name)
            continue
        set_state(session, sid, list_id, S.CONFIRMED, kind="confirm", source=SOURCE, actor=ACTOR,
                  ip=ip, user_agent=user_agent,
                  detail={"page": _signup_page(session, sid, list_id), "referrer": referrer,
                          "link_issued": datetime.fromtimestamp(issued, UTC).isoformat()})
        result.confirmed.append(ml.name)
    if not result.confirmed and not result.already:
        raise TokenError("this link has already been used")
    return result


def _left_at(session: Session, subscriber_id: int, list_id: int) -> datetime | None:
    """When the person last left this list (unsubscribed, bounced, complained), from the consent log."""
    at = session.exec(
        select(func.max(SubscriberEvent.at)).where(
            SubscriberEvent.subscriber_id == subscriber_id, SubscriberEvent.list_id == list_id,
            SubscriberEvent.new_state.in_(S.NEVER_RESUBSCRIBE))  # type: ignore[union-attr]
    ).one()
    return at


def _signup_page(session: Session, subscriber_id: int, list_id: int) -> str | None:
    """The page the signup came from, copied from the newest web signup event into the consent record."""
    events = session.exec(
        select(SubscriberEvent).where(SubscriberEvent.subscriber_id == subscriber_id,
                                      SubscriberEvent.list_id == list_id, SubscriberEvent.source == SOURCE)
        .order_by(SubscriberEvent.at.desc(), SubscriberEvent.id.desc())  # type: ignore[union-attr]
    ).all()
    for ev in events:
        page = (ev.detail or {}).get("page")
        if page:
            return str(page)
    return None
