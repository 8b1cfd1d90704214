"""Our own tokens in the addresses a message was sent to: reply, VERP bounce and unsubscribe.

A token that has our shape but does not verify is remembered as forged: the
message is then never attached to anyone, not even by a weaker signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from bulletin.audience.links import Links
from bulletin.audience.tokens import local_part_token
from bulletin.errors import TokenError
from bulletin.inbound.reading.parse import addresses

RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")


@dataclass(frozen=True)
class AddressTokens:
    """(subscriber_id, issue_id) pairs found in recipient addresses; list id for unsubscribe."""

    reply: tuple[int, int] | None = None
    bounce: tuple[int, int] | None = None
    unsubscribe: tuple[int, int] | None = None
    forged: bool = False


def read_tokens(msg: Message, links: Links, envelope_to: list[str]) -> AddressTokens:
    """The tokens of every recipient address; a bad one at our sending domain marks the message forged.

    A bad token at another domain is somebody else's: trackers and senders use the same
    `reply+...@` and `bounces+...@` shapes (GitHub, SendGrid), and a subscriber may copy one in.
    It is ignored. A good token at another domain still counts, since a relay may rewrite
    the domain of the address it delivers to.
    """
    reply = bounce = unsub = None
    forged = False
    ours = "@" + links.settings.sending_domain.lower()
    candidates = [a.strip().strip("<>").lower() for a in envelope_to] + addresses(msg, *RECIPIENT_HEADERS)
    for addr in dict.fromkeys(candidates):
        try:
            reply = reply or links.parse_reply_address(addr)
            bounce = bounce or links.parse_bounce_address(addr)
            unsub = unsub or _unsubscribe_token(links, addr)
        except TokenError:
            forged = forged or addr.endswith(ours)
    return AddressTokens(reply=reply, bounce=bounce, unsubscribe=unsub, forged=forged)


def _unsubscribe_token(links: Links, addr: str) -> tuple[int, int] | None:
    """The `bounces+u-<token>@` address of the List-Unsubscribe mailto: (subscriber_id, list_id)."""
    token = local_part_token(addr, links.settings.bounce_local)
    if token is None or not token.startswith("u-"):
        return None
    numbers = links.signer.parse_address_token("unsubscribe", token[2:])
    if len(numbers) != 2:
        raise TokenError("address token has the wrong shape")
    return numbers[0], numbers[1]
