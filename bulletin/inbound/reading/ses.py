"""Amazon SES notifications delivered by email through SNS: JSON instead of a DSN or ARF.

An organisation that relays through SES and subscribes an address to its
bounce/complaint topic gets these; reading them directly gives the recipient and
the permanence SES already decided, instead of guessing from prose.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message

from bulletin.inbound.reading.parse import body_text
from bulletin.inbound.reading.reports import BounceRecipient, bare_address, status_code


@dataclass(frozen=True)
class SesNotice:
    kind: str  # bounce, complaint, delivery
    bounces: tuple[BounceRecipient, ...] = ()
    complained: tuple[str, ...] = ()
    feedback_type: str = ""
    # The SNS envelope (Type, MessageId, Signature, ...) when the mail carried one; {} for a bare SES body.
    envelope: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    # SES's own record of the sent mail: envelope sender (our VERP address) and original headers.
    mail: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


def ses_notice(msg: Message) -> SesNotice | None:
    """The SES notification in an SNS email, None for any other message or unreadable JSON."""
    if msg.get("x-amz-sns-message-id") is None:
        return None
    data = _json(body_text(msg))
    envelope: dict[str, object] = {}
    if isinstance(data.get("Message"), str):  # raw SNS envelope around the SES message
        envelope = data
        data = _json(data["Message"])
    notice = _notice(data)
    if notice is None:
        return None
    mail = data.get("mail") if isinstance(data.get("mail"), dict) else {}
    return SesNotice(notice.kind, notice.bounces, notice.complained, notice.feedback_type, envelope, mail)


def _notice(data: dict) -> SesNotice | None:  # type: ignore[type-arg]
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind == "bounce":
        bounce = data.get("bounce") or {}
        permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
        rows = []
        for r in bounce.get("bouncedRecipients") or []:
            addr = bare_address(str(r.get("emailAddress", "")))
            if addr:
                code = str(r.get("status") or "") or status_code(str(r.get("diagnosticCode") or ""))
                perm = code.startswith("5") if code else permanent
                rows.append(BounceRecipient(addr, perm, code, str(r.get("diagnosticCode") or "")[:500]))
        return SesNotice("bounce", bounces=tuple(rows))
    if kind == "complaint":
        complaint = data.get("complaint") or {}
        addrs = [bare_address(str(r.get("emailAddress", ""))) for r in complaint.get("complainedRecipients") or []]
        return SesNotice("complaint", complained=tuple(a for a in addrs if a),
                         feedback_type=str(complaint.get("complaintFeedbackType") or "abuse").strip().lower())
    return SesNotice("delivery") if kind else None


def _json(text: str) -> dict:  # type: ignore[type-arg]
    start = text.find("{")
    if start < 0:
        return {}
    try:
        # SNS folds long JSON lines and appends a footer: decode the first object, allow raw newlines.
        value, _ = json.JSONDecoder(strict=False).raw_decode(text[start:])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# The fields SNS signs, in order, per message type (AWS "Verifying the signatures of Amazon SNS messages").
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def sns_signed_text(envelope: dict[str, object]) -> bytes | None:
    """The canonical string SNS signed, None when the envelope lacks a field it must have."""
    names = _SIGNED_FIELDS.get(str(envelope.get("Type", "")))
    if names is None:
        return None
    out = []
    for name in names:
        if name not in envelope:
            if name == "Subject":
                continue
            return None
        out.append(f"{name}\n{envelope[name]}\n")
    return "".join(out).encode()


def verify_sns(notice: SesNotice, certificates: Sequence[bytes]) -> bool:
    """True only when the SNS envelope's signature verifies against one of the configured PEM certificates.

    Offline on purpose: the certificate URL inside the message is the sender's
    claim, so it is never fetched; the operator configures the certificate(s)
    of the topic's region. A bare SES body (no envelope) never verifies.
    """
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    text = sns_signed_text(notice.envelope)
    try:
        signature = base64.b64decode(str(notice.envelope.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        return False
    version = str(notice.envelope.get("SignatureVersion", "1"))
    digest = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if text is None or not signature or digest is None:
        return False
    for pem in certificates:
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError:
            continue
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, text, padding.PKCS1v15(), digest)
            return True
        except InvalidSignature:
            continue
    return False
