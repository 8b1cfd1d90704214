"""Every per-recipient address and URL, built in one place.

The delivery stage puts these into messages, the web app and the inbound stage
take them apart again; keeping both directions here means the token payloads
and URL paths cannot drift apart. Web routes: /confirm/{token},
/unsubscribe/{token}, /preferences/{token}, /signup, /signup/{list},
/refer/{token}, /archive/, /archive/{issue}/, /archive/{list}/feed.xml, /view/{token},
/my-data/{token}, /erase/{token}.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous.encoding import base64_decode, bytes_to_int

from bulletin.audience.tokens import Signer, local_part_token
from bulletin.config import Settings
from bulletin.errors import TokenError

CONFIRM_MAX_AGE = 7 * 24 * 3600  # a confirmation link works for a week
DATA_REQUEST_MAX_AGE = 24 * 3600  # a mailed export or erase link works for a day (and once)
DATA_REQUEST_PATHS = {"export": "my-data", "erase": "erase"}


@dataclass(frozen=True)
class Links:
    """URL and address builders bound to one workspace's settings and keys."""

    settings: Settings
    signer: Signer

    @classmethod
    def for_settings(cls, settings: Settings) -> Links:
        return cls(settings=settings, signer=Signer(settings.secret_keys))

    @property
    def base(self) -> str:
        return self.settings.public_base_url

    # Outbound URLs -------------------------------------------------------------------------
    # Unsubscribe and preferences links sit in every message, so they use the short HMAC
    # tokens (a few microseconds each, against ~60 for an itsdangerous payload) and never
    # expire: a link in an old issue must still work (RFC 8058, and the law in most places).
    def unsubscribe_url(self, subscriber_id: int, list_id: int, issue_id: int | None = None) -> str:
        token = self.signer.address_token("unsubscribe", subscriber_id, list_id, issue_id or 0)
        return f"{self.base}/unsubscribe/{token}"

    def preferences_url(self, subscriber_id: int) -> str:
        return f"{self.base}/preferences/{self.signer.address_token('preferences', subscriber_id)}"

    def confirm_url(self, subscriber_id: int, list_ids: list[int], referrer_id: int | None = None) -> str:
        payload = {"s": subscriber_id, "l": sorted(list_ids), "r": referrer_id}
        return f"{self.base}/confirm/{self.signer.dumps('confirm', payload)}"

    def referral_url(self, subscriber_id: int, list_id: int) -> str:
        return f"{self.base}/refer/{self.signer.dumps('referral', {'s': subscriber_id, 'l': list_id})}"

    def view_online_url(self, issue_slug: str) -> str:
        """The public archive copy (lists with `archive_public`); mail carries `view_url` instead."""
        return f"{self.base}/archive/{issue_slug}/"

    def view_url(self, subscriber_id: int, issue_id: int) -> str:
        """The signed per-recipient "view online" link: works for every list, public or not."""
        return f"{self.base}/view/{self.signer.address_token('view', subscriber_id, issue_id)}"

    def data_request_url(self, kind: str, request_id: int) -> str:
        """The fresh link mailed on request to export ("export") or erase ("erase") someone's data."""
        return f"{self.base}/{DATA_REQUEST_PATHS[kind]}/{self.signer.dumps(kind, {'r': request_id})}"

    def for_message(self, subscriber_id: int, list_id: int, issue_id: int) -> MessageLinks:
        """Every per-recipient URL and address of one message, from one HMAC (tokens.MessageTokens).

        The single builders above stay for pages and one-off mails; both shapes verify.
        """
        t = self.signer.message_tokens(subscriber_id, list_id, issue_id)
        s, domain = self.settings, self.settings.sending_domain
        return MessageLinks(
            unsubscribe_url=f"{self.base}/unsubscribe/{t.unsubscribe}",
            unsubscribe_mailto=f"mailto:{s.bounce_local}+u-{t.unsubscribe_mail}@{domain}?subject=unsubscribe",
            preferences_url=f"{self.base}/preferences/{t.preferences}",
            reply_address=f"{s.reply_local}+{t.reply}@{domain}",
            bounce_address=f"{s.bounce_local}+{t.bounce}@{domain}",
            message_id=f"<b.{t.message}@{domain}>",
        )

    # Addresses -----------------------------------------------------------------------------
    def reply_address(self, subscriber_id: int, issue_id: int) -> str:
        token = self.signer.address_token("reply", subscriber_id, issue_id)
        return f"{self.settings.reply_local}+{token}@{self.settings.sending_domain}"

    def bounce_address(self, subscriber_id: int, issue_id: int) -> str:
        """VERP envelope sender: a bounce to it names the recipient without parsing the DSN."""
        token = self.signer.address_token("bounce", subscriber_id, issue_id)
        return f"{self.settings.bounce_local}+{token}@{self.settings.sending_domain}"

    def unsubscribe_mailto(self, subscriber_id: int, list_id: int) -> str:
        token = self.signer.address_token("unsubscribe", subscriber_id, list_id)
        return f"mailto:{self.settings.bounce_local}+u-{token}@{self.settings.sending_domain}?subject=unsubscribe"

    def message_id(self, subscriber_id: int, issue_id: int) -> str:
        """Derived from (issue, subscriber): a resend carries the same id, replies can be matched."""
        token = self.signer.address_token("message", subscriber_id, issue_id)
        return f"<b.{token}@{self.settings.sending_domain}>"

    # Web parsing --------------------------------------------------------------------------------
    def parse_unsubscribe_token(self, token: str) -> tuple[int, int, int | None]:
        """(subscriber_id, list_id, issue_id or None); TokenError for anything forged or malformed."""
        numbers = self.signer.parse_address_token("unsubscribe", token)
        if len(numbers) != 3:
            raise TokenError("address token has the wrong shape")
        return numbers[0], numbers[1], numbers[2] or None

    def parse_preferences_token(self, token: str) -> int:
        numbers = self.signer.parse_address_token("preferences", token)
        if len(numbers) != 1:
            raise TokenError("address token has the wrong shape")
        return numbers[0]

    def parse_view_token(self, token: str) -> tuple[int, int]:
        """(subscriber_id, issue_id) of a view-online link; TokenError when forged."""
        return _pair(self.signer.parse_address_token("view", token))

    def parse_data_request_token(self, kind: str, token: str) -> int:
        """The DataRequest id a mailed link names; TokenError when forged, expired or for the other kind."""
        request_id = self.signer.loads(kind, token, max_age=DATA_REQUEST_MAX_AGE).get("r")
        if not isinstance(request_id, int):
            raise TokenError("this link is not valid")
        return request_id

    def parse_confirm_token(self, token: str) -> ConfirmToken:
        """What a confirmation link names and when it was signed; TokenError for forged, expired or odd ones."""
        payload = self.signer.loads("confirm", token, max_age=CONFIRM_MAX_AGE)
        sid, list_ids, referrer = payload.get("s"), payload.get("l"), payload.get("r")
        if not isinstance(sid, int) or not isinstance(list_ids, list) or not all(isinstance(i, int) for i in list_ids):
            raise TokenError("this link is not valid")
        return ConfirmToken(sid, tuple(list_ids), referrer if isinstance(referrer, int) else None,
                            token_issued_at(token))

    def parse_referral_token(self, token: str) -> tuple[int | None, int | None]:
        """(referrer subscriber_id, list_id), each None when the payload lacks it; TokenError when forged."""
        payload = self.signer.loads("referral", token)
        sid, lid = payload.get("s"), payload.get("l")
        return (sid if isinstance(sid, int) else None), (lid if isinstance(lid, int) else None)

    # Inbound parsing ----------------------------------------------------------------------------
    def parse_reply_address(self, address: str) -> tuple[int, int] | None:
        """(subscriber_id, issue_id) from `reply+token@`, None when absent; TokenError when forged."""
        token = local_part_token(address, self.settings.reply_local)
        return None if token is None else _pair(self.signer.parse_address_token("reply", token))

    def parse_bounce_address(self, address: str) -> tuple[int, int] | None:
        token = local_part_token(address, self.settings.bounce_local)
        if token is None or token.startswith("u-"):
            return None
        return _pair(self.signer.parse_address_token("bounce", token))

    def parse_message_id(self, message_id: str) -> tuple[int, int] | None:
        """(subscriber_id, issue_id) from one of our Message-IDs, None for anyone else's."""
        mid = message_id.strip().strip("<>")
        local, _, domain = mid.rpartition("@")
        if not local.startswith("b.") or domain.lower() != self.settings.sending_domain.lower():
            return None
        try:
            return _pair(self.signer.parse_address_token("message", local[2:]))
        except TokenError:
            return None


@dataclass(frozen=True)
class ConfirmToken:
    subscriber_id: int
    list_ids: tuple[int, ...]
    referrer_id: int | None
    issued_at: int  # seconds since the epoch


def token_issued_at(token: str) -> int:
    """Seconds since the epoch at which an itsdangerous timed token was signed (after it verified)."""
    try:
        return bytes_to_int(base64_decode(token.rsplit(".", 2)[1]))
    except (IndexError, ValueError) as exc:
        raise TokenError("this link is not valid") from exc


@dataclass(frozen=True)
class MessageLinks:
    """The links and addresses one message carries (see `Links.for_message`)."""

    unsubscribe_url: str
    unsubscribe_mailto: str
    preferences_url: str
    reply_address: str
    bounce_address: str
    message_id: str


def _pair(numbers: tuple[int, ...]) -> tuple[int, int]:
    if len(numbers) != 2:
        raise TokenError("address token has the wrong shape")
    return numbers[0], numbers[1]
