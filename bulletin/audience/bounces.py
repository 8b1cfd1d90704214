"""The bounce policy, in one place: every authenticated bounce of a subscriber goes through `record_bounce`.

Modelled on GNU Mailman 3: a subscriber has a bounce score. A soft (temporary)
bounce adds one point, at most once per day, so a burst of retries from one
outage counts once. An authenticated hard bounce sets the score straight to the
threshold. When no bounce has come for `stale_after` days the score starts
again from zero, so old points expire. Only a score at the threshold marks the
active subscriptions bounced. Callers: the inbound stage (authenticated
evidence) and the delivery stage (an SMTP server refusing a recipient).
Unauthenticated evidence never reaches this function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from bulletin.audience.lifecycle import mark_bounced
from bulletin.models import Bounce, BounceScore, utcnow


@dataclass(frozen=True)
class BouncePolicy:
    """Threshold and staleness (settings `bounce_score_threshold`, `bounce_info_stale_after_days`)."""

    threshold: int = 5
    stale_after: timedelta = timedelta(days=7)

    @classmethod
    def from_settings(cls, settings: Any) -> BouncePolicy:
        return cls(settings.bounce_score_threshold, timedelta(days=settings.bounce_info_stale_after_days))


@dataclass(frozen=True)
class BounceOutcome:
    """What one bounce did: the score after it, whether it counted, whether it marked the subscriber bounced."""

    subscriber_id: int
    score: int
    counted: bool
    bounced: bool
    repeated: bool = False  # this evidence had already been recorded (a reprocess): nothing changed

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def record_bounce(session: Session, subscriber_id: int, *, permanent: bool, source: str,
                  evidence_id: int | None = None, when: datetime | None = None,
                  policy: BouncePolicy = BouncePolicy(), actor: str = "", issue_id: int | None = None,
                  inbound_id: int | None = None, delivery_id: int | None = None, status_code: str = "",
                  diagnostic: str = "") -> BounceOutcome:
    """Score one authenticated bounce and mark the subscriber bounced at the threshold.

    Idempotent per `evidence_id`: reprocessing the same evidence changes nothing.
    """
    when = _aware(when or utcnow())
    if evidence_id is not None:
        seen = session.exec(select(Bounce.id).where(Bounce.evidence_id == evidence_id)).first()
        if seen is not None:
            score = session.get(BounceScore, subscriber_id)
            return BounceOutcome(subscriber_id, score.score if score else 0, False, False, repeated=True)
    session.add(Bounce(subscriber_id=subscriber_id, issue_id=issue_id, inbound_id=inbound_id,
                       delivery_id=delivery_id, evidence_id=evidence_id, permanent=permanent,
                       status_code=status_code[:32], diagnostic=diagnostic[:1000], at=when))
    row = session.get(BounceScore, subscriber_id) or BounceScore(subscriber_id=subscriber_id)
    last = _aware(row.last_bounce_at) if row.last_bounce_at else None
    if last is not None and when - last > policy.stale_after:
        row.score = 0  # the old points have expired
    counted = True
    if permanent:
        row.score = max(row.score, policy.threshold)
    elif last is not None and last.date() == when.date() and row.score > 0:
        counted = False  # one point per day at most
    else:
        row.score += 1
    if last is None or when > last:
        row.last_bounce_at = when
    session.add(row)
    session.flush()
    bounced = False
    if counted and row.score >= policy.threshold:
        reason = "hard bounce" if permanent else f"bounce score {row.score} reached {policy.threshold}"
        events = mark_bounced(session, subscriber_id, source=source, actor=actor or source, issue_id=issue_id,
                              detail={"reason": reason, "evidence_id": evidence_id, "status": status_code,
                                      "score": row.score})
        bounced = bool(events)
    return BounceOutcome(subscriber_id, row.score, counted, bounced)


def bounce_score(session: Session, subscriber_id: int) -> int:
    row = session.get(BounceScore, subscriber_id)
    return row.score if row else 0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
