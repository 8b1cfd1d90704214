"""Classify one parsed message: complaint, bounce, auto-reply, unsubscribe request or human mail.

Order matters and follows how sure each signal is: an ARF report, then a
VERP bounce address plus an RFC 3464 report, then flufl.bounce heuristics, then
auto-reply signs. Exceptions from third-party parsers are not caught here:
the pipeline quarantines the message with the error and moves on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message

from flufl.bounce import all_failures

from bulletin.inbound.reading.addresses import AddressTokens
from bulletin.inbound.reading.autoreply import auto_reply_reason
from bulletin.inbound.reading.bounce_forms import (
    failure_code,
    family_recipients,
    message_id_addresses,
    report_text,
    text_dsn_recipients,
)
from bulletin.inbound.reading.bounce_text import (
    looks_like_bounce,
    text_permanence,
    text_recipients,
    text_verdict,
)
from bulletin.inbound.reading.parse import addresses, body_text
from bulletin.inbound.reading.reports import (
    COMPLAINT_TYPES,
    BounceRecipient,
    arf_complaint,
    bare_address,
    dsn_recipients,
    dsn_success_only,
    original_headers,
    status_code,
)
from bulletin.inbound.reading.ses import SesNotice, ses_notice, verify_sns

COMPLAINT, BOUNCE, AUTO_REPLY, UNSUBSCRIBE, MAIL = "complaint", "bounce", "auto_reply", "unsubscribe", "mail"


@dataclass(frozen=True)
class Classification:
    kind: str
    reason: str
    bounces: tuple[BounceRecipient, ...] = ()
    complaint_addresses: tuple[str, ...] = ()
    feedback_type: str = ""
    detail: dict[str, object] = field(default_factory=dict)


def classify(msg: Message, tokens: AddressTokens, *, sns_certificates: Sequence[bytes] = ()) -> Classification:
    """What kind of message this is, and who bounced or complained.

    A complaint needs an ARF `Feedback-Type` part, or an Amazon SES notice whose
    SNS signature verifies against one of `sns_certificates`; an unverified SES
    complaint keeps its addresses but is only an automatic message.
    """
    if tokens.unsubscribe is not None:
        return Classification(UNSUBSCRIBE, "list-unsubscribe-mailto")
    complaint = arf_complaint(msg)
    if complaint is not None:
        if complaint.feedback_type not in COMPLAINT_TYPES:
            return Classification(AUTO_REPLY, "arf-not-a-complaint", complaint_addresses=complaint.addresses,
                                  feedback_type=_shown_type(complaint.feedback_type))
        return Classification(COMPLAINT, "arf", complaint_addresses=complaint.addresses,
                              feedback_type=complaint.feedback_type)
    ses = ses_notice(msg)
    if ses is not None:
        return _from_ses(ses, verify_sns(ses, sns_certificates) if sns_certificates else False)
    dsn = dsn_recipients(msg)
    if dsn:
        return Classification(BOUNCE, "verp+dsn" if tokens.bounce else "dsn", bounces=tuple(dsn))
    if dsn is not None and dsn_success_only(msg):
        return Classification(AUTO_REPLY, "delivery-report")
    reason = auto_reply_reason(msg)
    # Written to a reply address (and not to a VERP one) with no standard report at its top: a
    # person's message, even when it forwards a bounce ("Fw: Undelivered Mail ..." to tell us a
    # link is dead). Reading the forwarded bounce would file their words as a bounce, unread.
    written = tokens.reply is not None and tokens.bounce is None and dsn is None
    shaped = not written and looks_like_bounce(msg)
    bouncey = shaped or dsn is not None
    if reason and not bouncey:
        return Classification(AUTO_REPLY, reason)
    found = _heuristic_bounces(msg, shaped) if (bouncey or tokens.bounce is not None) else []
    if found:
        return Classification(BOUNCE, "verp+heuristic" if tokens.bounce else "heuristic", bounces=tuple(found))
    if tokens.bounce is not None:
        return Classification(BOUNCE, "verp")
    if bouncey:
        # Shaped like a bounce but naming nobody: nothing to act on, so it is only an automatic message.
        return Classification(AUTO_REPLY, "delivery-report" if dsn is not None else "bounce-without-recipient")
    reason = reason or auto_reply_reason(msg, subject_only=True)
    if reason:
        return Classification(AUTO_REPLY, reason)
    return Classification(MAIL, "human")


def _from_ses(ses: SesNotice, verified: bool) -> Classification:
    detail: dict[str, object] = {"ses_verified": verified}
    if ses.kind == "complaint":
        if ses.feedback_type not in COMPLAINT_TYPES:
            return Classification(AUTO_REPLY, "ses-not-a-complaint", complaint_addresses=ses.complained,
                                  feedback_type=_shown_type(ses.feedback_type), detail=detail)
        if not verified:
            return Classification(AUTO_REPLY, "ses-complaint-unverified", complaint_addresses=ses.complained,
                                  feedback_type=ses.feedback_type, detail=detail)
        return Classification(COMPLAINT, "ses", complaint_addresses=ses.complained, feedback_type=ses.feedback_type,
                              detail=detail)
    if ses.kind == "bounce" and ses.bounces:
        return Classification(BOUNCE, "ses" if verified else "ses-unverified", bounces=ses.bounces, detail=detail)
    return Classification(AUTO_REPLY, "ses-" + ses.kind, detail=detail)


def _shown_type(feedback_type: str) -> str:
    """A stranger's feedback type as it may be stored and shown: letters, digits and dashes, 32 at most."""
    return "".join(c for c in feedback_type if c.isalnum() or c == "-")[:32] or "unknown"


def _heuristic_bounces(msg: Message, shaped: bool) -> list[BounceRecipient]:
    """Report fields written as text, then flufl.bounce's detectors, then our own reading of the text.

    Status and permanence come from the text when it has them.
    """
    text = report_text(msg) or body_text(msg)
    inline = text_dsn_recipients(text)
    if inline:
        return _plausible(msg, inline, text)
    if shaped:
        named = family_recipients(text)
        if named:
            code = failure_code(text)
            permanent = text_permanence(code, text)
            found = [BounceRecipient(a, permanent, code, "") for a in named[:20]]
            return _plausible(msg, found, text, named=True)
    temporary, permanent = all_failures(msg)
    code = status_code(text)
    verdict = text_verdict(text) if (temporary or permanent) and not code else None
    out: list[BounceRecipient] = []
    for raw, perm in [(a, True) for a in sorted(permanent)] + [(a, False) for a in sorted(temporary)]:
        addr = bare_address(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
        if addr and addr not in {b.address for b in out}:
            kept = code[:1] != "4" if code else perm if verdict is None else verdict
            out.append(BounceRecipient(addr, kept, code, ""))
    if not out and shaped:
        out = text_recipients(msg, text)
    return _plausible(msg, out, text)


def _plausible(msg: Message, found: list[BounceRecipient], text: str, *, named: bool = False) -> list[BounceRecipient]:
    """Heuristics over-collect: drop the report's own parties and keep the original's recipients when known.

    Addresses `named` by a server's own failure list stand even when the original's To: lists fewer
    (Bcc and list expansions are not in it).
    """
    original = original_headers(msg)
    exclude = set(addresses(msg, "From", "To", "Reply-To")) | message_id_addresses(msg, text)
    wanted: set[str] = set()
    if original is not None:
        exclude |= set(addresses(original, "From", "Sender", "Reply-To"))
        wanted = set(addresses(original, "To", "Cc"))
    kept = [b for b in found if b.address not in exclude] or found
    if wanted and not named and any(b.address in wanted for b in kept):
        kept = [b for b in kept if b.address in wanted]
    return kept
