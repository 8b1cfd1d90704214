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

from bulletin.audience.addresses import mask_address, normalise_address
from bulletin.audience.lifecycle import set_state, subscribe
from bulletin.audience.links import CONFIRM_MAX_AGE, ConfirmToken, Links
from bulletin.audience.lists import list_from
from bulletin.audience.notices import queue_notice
from bulletin.audience.subscribers import find_subscriber, get_list, is_suppressed
from bulletin.errors import NotFound, StateError, TokenError
from bulletin.messenger import Notice
from bulletin.models import MailingList, Subscriber, SubscriberEvent, Subscription, id_of, utcnow
from bulletin.statuses import SubscriptionState as S

SOURCE = "web"
ACTOR = "self"


class SignupOutcome(enum.Enum):
    MAIL_QUEUED = "mail_queued"  # a confirmation mail is queued
    ALREADY_MAILED = "already_mailed"  # everything chosen was confirmed: a "you are already subscribed" mail
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
    """Subscribe `req.email` to the chosen lists: pending plus a queued confirmation mail, or at once.

    Someone already confirmed on everything chosen gets a queued "you are
    already subscribed" mail instead, so every address costs about the same
    work and the person learns about the attempt from their own mailbox.
    """
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
    if sub is None or sub.id is None:
        return SignupOutcome.NOTHING_TO_DO
    to_confirm = pending + reconfirm
    already = [m for m in lists if states.get(m.id) == S.CONFIRMED]  # type: ignore[arg-type]
    if not to_confirm and (direct or not already):
        return SignupOutcome.CONFIRMED_NOW if direct else SignupOutcome.NOTHING_TO_DO
    mailed = to_confirm or already
    if not _claim_confirmation_slot(session, sub.id, [id_of(m) for m in mailed], window):
        return SignupOutcome.THROTTLED
    if to_confirm:
        notice = confirmation_notice(links, email, sub.id, to_confirm, req.referrer_id)
        queue_notice(session, notice, kind="confirm", subscriber_id=sub.id)
        return SignupOutcome.MAIL_QUEUED
    queue_notice(session, already_notice(links, email, sub.id, already), kind="already", subscriber_id=sub.id)
    return SignupOutcome.ALREADY_MAILED


def signup_lists(session: Session) -> list[MailingList]:
    """Every list the public signup page offers (`public_signup`), by name."""
    stmt = select(MailingList).where(MailingList.public_signup.is_(True))  # type: ignore[attr-defined]
    return list(session.exec(stmt.order_by(MailingList.name)).all())


def public_list(session: Session, slug: str) -> MailingList:
    """The list behind `/signup/<slug>`; NotFound for unknown lists and lists not open to the public."""
    ml = session.exec(select(MailingList).where(MailingList.slug == slug)).first()
    if ml is None or not ml.public_signup:
        raise NotFound("no such bulletin", where=f"list {slug!r}")
    return ml


def list_by_id(session: Session, list_id: int) -> MailingList | None:
    """A list a referral link may point at: only those open to the public."""
    ml = session.get(MailingList, list_id)
    return ml if ml is not None and ml.public_signup else None


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


def mail_confirmation(session: Session, links: Links, email: str, subscriber_id: int, lists: list[MailingList], *,
                      window: timedelta) -> bool:
    """Queue a confirmation link for `lists`, unless one went to this address within `window` (False then:
    that earlier link still works, and a page cannot be used to mail someone over and over)."""
    if not _claim_confirmation_slot(session, subscriber_id, [id_of(m) for m in lists], window):
        return False
    notice = confirmation_notice(links, email, subscriber_id, lists, None)
    queue_notice(session, notice, kind="confirm", subscriber_id=subscriber_id)
    return True


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


def confirmation_notice(links: Links, email: str, subscriber_id: int, lists: list[MailingList],
                        referrer_id: int | None) -> Notice:
    """The mail with the signed confirmation link (queued; the notice sender sends it)."""
    url = links.confirm_url(subscriber_id, [id_of(m) for m in lists], referrer_id)
    names = ", ".join(m.name for m in lists)
    text = (
        f"Hello,\n\nSomeone, probably you, asked to receive: {names}.\n\n"
        f"To confirm, open this link within {CONFIRM_MAX_AGE // 86400} days and press the button:\n\n{url}\n\n"
        "If you did not ask, ignore this message: nothing will be sent to you.\n"
    )
    first = lists[0]
    return Notice(to=email, subject=f"Please confirm your subscription: {names}"[:200], text=text,
                  from_addr=list_from(first, links.settings.organisation), reply_to=first.reply_to)


def already_notice(links: Links, email: str, subscriber_id: int, lists: list[MailingList]) -> Notice:
    """The answer to a signup for lists the address already receives: nothing changed, here is where to."""
    names = ", ".join(m.name for m in lists)
    text = (
        f"Hello,\n\nSomeone, probably you, asked to receive: {names}.\n\n"
        "This address is already subscribed, so nothing has changed. To choose your bulletins or leave,\n"
        f"use your preferences page:\n\n{links.preferences_url(subscriber_id)}\n\n"
        "If you did not ask, ignore this message.\n"
    )
    first = lists[0]
    return Notice(to=email, subject=f"You are already subscribed: {names}"[:200], text=text,
                  from_addr=list_from(first, links.settings.organisation), reply_to=first.reply_to)


# Confirm ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfirmPreview:
    """What the confirmation page shows before the button is pressed (a GET changes nothing)."""

    masked_email: str
    to_confirm: tuple[str, ...]
    already: tuple[str, ...]


def _classify(session: Session, links: Links, token: str) -> tuple[ConfirmToken, Subscriber, list[tuple[MailingList, str]]]:
    """The link's subscriber and each named list with "confirm", "already" or "stale"; TokenError when unusable."""
    parsed = links.parse_confirm_token(token)
    sub = session.get(Subscriber, parsed.subscriber_id)
    if sub is None or sub.email is None or is_suppressed(session, sub.email):
        raise TokenError("this link is no longer valid")
    out: list[tuple[MailingList, str]] = []
    for list_id in parsed.list_ids:
        row = session.exec(select(Subscription).where(Subscription.subscriber_id == sub.id,
                                                      Subscription.list_id == list_id)).first()
        ml = session.get(MailingList, list_id)
        if row is None or ml is None:
            continue
        if row.state == S.CONFIRMED:
            out.append((ml, "already"))
            continue
        left = _left_at(session, parsed.subscriber_id, list_id)
        stale = left is not None and parsed.issued_at <= left.timestamp()
        out.append((ml, "stale" if stale else "confirm"))
    if not any(status in ("confirm", "already") for _ml, status in out):
        raise TokenError("this link has already been used")
    return parsed, sub, out


def confirm_preview(session: Session, links: Links, token: str) -> ConfirmPreview:
    """The lists a link would confirm and the partly masked address; changes nothing (scanners GET links)."""
    _parsed, sub, lists = _classify(session, links, token)
    assert sub.email is not None
    return ConfirmPreview(mask_address(sub.email), tuple(m.name for m, st in lists if st == "confirm"),
                          tuple(m.name for m, st in lists if st == "already"))


def confirm(session: Session, links: Links, token: str, *, ip: str | None,
            user_agent: str | None) -> ConfirmResult:
    """Confirm the lists a link names (the press of the button); TokenError for forged, expired or used links."""
    parsed, sub, lists = _classify(session, links, token)
    assert sub.id is not None
    result = ConfirmResult()
    for ml, status in lists:
        if status != "confirm":
            (result.already if status == "already" else result.stale).append(ml.name)
            continue
        assert ml.id is not None
        set_state(session, sub.id, ml.id, S.CONFIRMED, kind="confirm", source=SOURCE, actor=ACTOR,
                  ip=ip, user_agent=user_agent,
                  detail={"page": _signup_page(session, sub.id, ml.id), "referrer": parsed.referrer_id,
                          "link_issued": datetime.fromtimestamp(parsed.issued_at, UTC).isoformat()})
        result.confirmed.append(ml.name)
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
