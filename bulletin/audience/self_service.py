"""What a subscriber does from a link in a mail: unsubscribe, choose bulletins, export (erasure: `bulletin.forget`).

The signed token is the proof of identity (it only ever went to the mailbox),
so these flows change state without a password. Unsubscribe links never
expire and verify under every configured key, so mail sent before a key
rotation can still be left.

The preferences link is proof enough to leave a list, never to join one. It
travels in every bulletin, so whoever the mail was forwarded to holds it; and
it cannot undo what the mail system or the person said about the address.
Ticking a list here is a signup (`optin.signup`, as the public form): a list
the person is not on, or left, becomes pending with a confirmation link mailed
to the address; a list left after a bounce (mail to it failed) or a complaint
(they reported us as spam) keeps its state until that link's button is
pressed, since a pending row would let a later import or staff `add` (which
take pending people on) bring the person back without it. Only a list run
without double opt-in is joined at once, as its signup form would. A
suppressed address (every complaint suppresses one) cannot join anything here;
the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, literal
from sqlmodel import Session, select

from bulletin.audience.access import subject_access
from bulletin.audience.lifecycle import ACTIVE, record_event, unsubscribe
from bulletin.audience.links import Links
from bulletin.audience.optin import ACTOR, SOURCE, SignupOutcome, SignupRequest, signup
from bulletin.audience.subscribers import is_suppressed, subscriptions_of
from bulletin.errors import TokenError
from bulletin.models import IssueRecord, MailingList, Subscriber, Subscription, utcnow
from bulletin.statuses import SubscriptionState as S

ONE_CLICK = "one-click"
# Left because mail to the address failed or the person complained: rejoined only by a fresh opt-in by mail.
REJOIN_BY_MAIL = (S.BOUNCED, S.COMPLAINED)


@dataclass(frozen=True)
class UnsubscribeTarget:
    subscriber_id: int
    list_id: int
    issue_id: int | None
    list_name: str


@dataclass(frozen=True)
class ListChoice:
    list_id: int
    slug: str
    name: str
    description: str
    state: str | None
    public_signup: bool
    double_opt_in: bool = True

    @property
    def shareable(self) -> bool:
        """Offer a "tell a colleague" link: the person gets this list, and a referral can sign up to it
        (`/refer/` takes only lists the public may join; a members-only one would refuse the colleague)."""
        return self.state == S.CONFIRMED and self.public_signup

    @property
    def leavable(self) -> bool:
        """On it now (confirmed, or pending a link): unticking it leaves, even for a suppressed address."""
        return self.state in (S.CONFIRMED, S.PENDING)

    @property
    def joins_by_mail(self) -> bool:
        """Ticking it (not on it now) mails a confirmation link first: every list but a public one
        without double opt-in that the person was never on, which the signup form joins at once."""
        if self.leavable:
            return False
        return self.state is not None or self.double_opt_in

    @property
    def rejoins_by_mail(self) -> bool:
        """Ticking it mails a confirmation link instead of subscribing (a bounce or complaint ended it)."""
        return self.state in REJOIN_BY_MAIL


@dataclass(frozen=True)
class ToConfirm:
    """Lists ticked here that start only when the link mailed to the address is confirmed."""

    lists: tuple[str, ...]  # list names
    mailed: bool  # False: a confirmation went to the address a short while ago; no second one yet


@dataclass(frozen=True)
class Preferences:
    subscriber_id: int
    email: str
    name: str
    organisation: str
    suppressed: bool
    lists: tuple[ListChoice, ...]
    to_confirm: ToConfirm | None = None  # set by `update_preferences` when ticked lists wait for the mailed link


# Unsubscribe -----------------------------------------------------------------------------------------
def unsubscribe_target(session: Session, links: Links, token: str) -> UnsubscribeTarget | None:
    """What an unsubscribe link points at; None when the person or list is already gone."""
    found = _target(session, links, token)
    return found[0] if found else None


def _target(session: Session, links: Links, token: str) -> tuple[UnsubscribeTarget, str | None] | None:
    """The link's target and the subscription's state, in one query: mailbox providers' one-click
    POSTs arrive in bursts, mostly repeats, and a repeat should cost one round trip."""
    try:
        sid, lid, iid = links.parse_unsubscribe_token(token)
    except TokenError:
        raise TokenError("this link is not valid") from None
    issue = select(IssueRecord.id).where(IssueRecord.id == iid).scalar_subquery() if iid is not None else None
    stmt = (select(MailingList.name, Subscription.state, issue if issue is not None else literal(None))
            .select_from(Subscriber)
            .join(MailingList, MailingList.id == lid)
            .outerjoin(Subscription, and_(Subscription.subscriber_id == Subscriber.id, Subscription.list_id == lid))
            .where(Subscriber.id == sid, Subscriber.erased_at.is_(None)))  # type: ignore[union-attr]
    row = session.exec(stmt).first()
    if row is None:
        return None
    name, state, issue_id = row
    return UnsubscribeTarget(sid, lid, issue_id, name), state


def unsubscribe_by_token(session: Session, links: Links, token: str, *, one_click: bool,
                         ip: str | None, user_agent: str | None) -> UnsubscribeTarget | None:
    """Leave the list the link names; repeating it changes nothing and still succeeds."""
    found = _target(session, links, token)
    if found is None:
        return None
    target, state = found
    if state in ACTIVE:
        unsubscribe(session, target.subscriber_id, target.list_id, source=SOURCE,
                    actor=ONE_CLICK if one_click else ACTOR, issue_id=target.issue_id, ip=ip,
                    user_agent=user_agent)
    return target


# Preferences -----------------------------------------------------------------------------------------
def subscriber_for(session: Session, links: Links, token: str) -> Subscriber:
    """The living subscriber a preferences link belongs to; TokenError otherwise (same words either way)."""
    try:
        sid = links.parse_preferences_token(token)
    except TokenError:
        raise TokenError("this link is not valid") from None
    sub = session.get(Subscriber, sid)
    if sub is None or sub.email is None or sub.erased_at is not None:
        raise TokenError("this link is no longer valid")
    return sub


def preferences(session: Session, sub: Subscriber) -> Preferences:
    assert sub.id is not None and sub.email is not None
    states = {s.list_id: s.state for s, _m in subscriptions_of(session, sub.id)}
    # Members-only lists (no public_signup) are offered only to people already on them.
    lists = [m for m in session.exec(select(MailingList).order_by(MailingList.name)).all()
             if m.public_signup or m.id in states]
    return Preferences(
        subscriber_id=sub.id, email=sub.email, name=sub.name, organisation=sub.organisation,
        suppressed=is_suppressed(session, sub.email),
        lists=tuple(ListChoice(m.id, m.slug, m.name, m.description, states.get(m.id), m.public_signup,  # type: ignore[arg-type]
                               m.double_opt_in)
                    for m in lists),
    )


def update_preferences(session: Session, links: Links, sub: Subscriber, chosen: list[str], name: str,
                       organisation: str, *, ip: str | None, user_agent: str | None,
                       window: timedelta) -> Preferences:
    """Leave the lists not chosen, sign up to the chosen ones the person is not on, update the profile.

    A pending list ticked again mails nothing new while a link naming it is in the mailbox (mailed
    since it became pending); one whose mail was held back by the window, or came before it was
    left and joined again (that link is stale for it), is signed up again, so saving later mails one.
    Unticked, it is left. A suppressed address joins nothing here but can still leave: the page
    disables only the boxes of lists it is not on (a browser leaves a disabled box out of the form,
    which would read as "unticked"), so what it posts is exactly its wish to stay or go.

    The signup is the public form's (see the module docstring); `to_confirm` on
    the result names the lists that wait for the mailed link.
    """
    assert sub.id is not None and sub.email is not None
    current = preferences(session, sub)
    linked = _linked_pending(session, sub.id)
    joining: list[ListChoice] = []
    for choice in current.lists:
        wanted = choice.slug in chosen
        if not wanted and choice.leavable:
            unsubscribe(session, sub.id, choice.list_id, source=SOURCE, actor=ACTOR, ip=ip,
                        user_agent=user_agent)
        elif wanted and not current.suppressed and choice.state != S.CONFIRMED and choice.list_id not in linked:
            joining.append(choice)
    asked = _sign_up(session, links, sub, joining, window=window, ip=ip, user_agent=user_agent)
    changed = {k: v for k, v in (("name", name), ("organisation", organisation)) if getattr(sub, k) != v}
    if changed:
        for key, value in changed.items():
            setattr(sub, key, value)
        sub.updated_at = utcnow()
        session.add(sub)
        record_event(session, sub.id, "profile", source=SOURCE, actor=ACTOR, ip=ip, user_agent=user_agent,
                     detail={"fields": sorted(changed)})
    session.flush()
    return replace(preferences(session, sub), to_confirm=asked)


def _linked_pending(session: Session, subscriber_id: int) -> set[int]:
    """Pending lists a confirmation link was mailed for since they became pending (it still confirms them)."""
    rows = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id,
                                                   Subscription.state == S.PENDING)).all()
    return {r.list_id for r in rows
            if r.confirmation_sent_at is not None and r.confirmation_sent_at >= r.updated_at}


def _sign_up(session: Session, links: Links, sub: Subscriber, choices: list[ListChoice], *,
             window: timedelta, ip: str | None, user_agent: str | None) -> ToConfirm | None:
    """The public signup for the ticked lists; a list left by bounce or complaint also logs the request."""
    if not choices:
        return None
    assert sub.id is not None and sub.email is not None
    outcome = signup(session, links, SignupRequest(
        email=sub.email, name="", organisation="", list_slugs=tuple(c.slug for c in choices),
        page="preferences", ip=ip, user_agent=user_agent), window=window)
    for choice in choices:
        if choice.rejoins_by_mail:
            record_event(session, sub.id, "rejoin_requested", source=SOURCE, actor=ACTOR, list_id=choice.list_id,
                         ip=ip, user_agent=user_agent,
                         detail={"page": "preferences", "state": choice.state,
                                 "confirmation_mailed": outcome is SignupOutcome.MAIL_QUEUED})
    session.flush()
    now = {c.list_id: c.state for c in preferences(session, sub).lists}
    waiting = tuple(c.name for c in choices if now.get(c.list_id) != S.CONFIRMED)
    if not waiting or outcome not in (SignupOutcome.MAIL_QUEUED, SignupOutcome.THROTTLED):
        return None
    return ToConfirm(waiting, outcome is SignupOutcome.MAIL_QUEUED)


# Export ---------------------------------------------------------------------------------------------
def export_data(session: Session, sub: Subscriber) -> dict[str, Any]:
    """The person's own copy of everything held about them: the same export staff get."""
    assert sub.id is not None
    return subject_access(session, sub.id)
