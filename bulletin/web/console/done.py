"""What a console page says after a POST: a fixed message named by a key in the redirect's query.

After a change the console answers 303 to a page (so a reload does not repeat
the change) with `?done=<key>`. Only the key travels in the URL; the words are
here, on the server. A link anyone can craft (`/admin/...?done=Your session
expired, sign in at evil.example`) would otherwise put their words on our page,
in our layout, in front of signed-in staff: escaping stops script, not a lie.
An unknown key shows nothing.
"""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    # feedback and unmatched mail
    "feedback-saved": "Saved.",
    "answer-queued": "Answer queued: it goes out in a moment, threaded under their reply.",
    "attached": "Attached as feedback.",
    # subscribers and signups
    "subscriber-added": "Subscriber added.",
    "unsubscribed": "Unsubscribed.",
    "unsubscribed-none": "Nothing changed: there was no active subscription to end.",
    "suppressed": "Suppressed: no more mail goes to this address.",
    "erased": "Erased: only the id and a hash of the address remain.",
    "confirmation-queued": "Confirmation queued again.",
    # staff accounts
    "account-added": "Account added.",
    "role-changed": "Role changed.",
    "account-disabled": "Account disabled; its open sessions have ended.",
    # issues
    "paused": "Paused the issue's running sends.",
    "paused-none": "Nothing to pause: no send of this issue is running.",
    "cancelled": "Cancelled the issue's unsent messages.",
    "cancelled-none": "Nothing to cancel: no message of this issue is waiting.",
    "resumed": "Resumed the paused sends; a running `bulletin worker` continues them.",
    "resumed-none": "Nothing to resume: no send of this issue is paused.",
}


def done_message(key: str | None) -> str:
    """The message of a known key; nothing for anything else (the query is the visitor's to write)."""
    return MESSAGES.get(key or "", "")


def done_query(key: str) -> str:
    """`done=<key>` for a redirect; a key not in MESSAGES is a mistake in our own code, refused at once."""
    if key not in MESSAGES:
        raise ValueError(f"unknown console message key {key!r}")
    return f"done={key}"
