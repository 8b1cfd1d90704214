"""Per-message tokens: one HMAC yields every token of a message, and each still only verifies as itself."""

from __future__ import annotations

import pytest

from bulletin.audience.links import Links
from bulletin.audience.tokens import Signer
from bulletin.config import load_settings
from bulletin.errors import TokenError


@pytest.fixture
def links(tmp_path) -> Links:
    return Links.for_settings(load_settings(tmp_path, secret_keys=["new-key", "old-key"],
                                            sending_domain="news.example.org",
                                            public_base_url="https://news.example.org"))


def _url_token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def _local_token(address: str) -> str:
    return address.removeprefix("mailto:").split("+", 1)[1].split("@")[0]


def test_every_token_of_a_message_parses_back_to_its_own_figures(links):
    m = links.for_message(12, 3, 45)
    assert links.parse_unsubscribe_token(_url_token(m.unsubscribe_url)) == (12, 3, 45)
    assert links.parse_preferences_token(_url_token(m.preferences_url)) == 12
    assert links.parse_reply_address(m.reply_address) == (12, 45)
    assert links.parse_bounce_address(m.bounce_address) == (12, 45)
    assert links.parse_message_id(m.message_id) == (12, 45)
    mail = _local_token(m.unsubscribe_mailto)
    assert mail.startswith("u-")
    assert links.signer.parse_address_token("unsubscribe", mail[2:]) == (12, 3)


def test_the_tokens_of_one_message_share_a_body_but_never_a_mac(links):
    tokens = links.signer.message_tokens(12, 3, 45)
    values = [tokens.unsubscribe, tokens.unsubscribe_mail, tokens.preferences, tokens.reply, tokens.bounce,
              tokens.message]
    assert len({v.rpartition("-")[2] for v in values}) == len(values)
    assert {v.rpartition("-")[0] for v in values} == {"c-3-19"}


PURPOSES = ["unsubscribe", "preferences", "reply", "bounce", "message"]


@pytest.mark.parametrize("issued", ["unsubscribe", "unsubscribe_mail", "preferences", "reply", "bounce",
                                    "message"])
def test_a_message_token_for_one_purpose_never_works_for_another(links, issued):
    token = getattr(links.signer.message_tokens(7, 1, 2), issued)
    own = "unsubscribe" if issued == "unsubscribe_mail" else issued
    for purpose in PURPOSES:
        if purpose == own:
            continue
        with pytest.raises(TokenError, match="verify"):
            links.signer.parse_address_token(purpose, token)


def test_the_mailto_slice_has_the_mailto_shape_and_the_web_slice_the_web_shape(links):
    m = links.for_message(7, 1, 2)
    with pytest.raises(TokenError, match="wrong shape"):
        links.parse_unsubscribe_token(_local_token(m.unsubscribe_mailto)[2:])


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # MAC changed
    lambda t: "9" + t,  # subscriber changed
    lambda t: t.replace("-3-", "-4-", 1),  # list changed
    lambda t: "1-2-" + t.rpartition("-")[2],  # numbers dropped
    lambda t: "zz!-3-1-" + t.rpartition("-")[2],  # not base 36
])
def test_forged_message_tokens_fail(links, tamper):
    token = tamper(links.signer.message_tokens(12, 3, 45).unsubscribe)
    with pytest.raises(TokenError):
        links.parse_unsubscribe_token(token)


def test_message_tokens_survive_key_rotation_until_the_key_is_dropped(tmp_path):
    old = Signer(["old-key"]).message_tokens(5, 2, 1)
    assert Signer(["new-key", "old-key"]).parse_address_token("reply", old.reply) == (5, 1)
    with pytest.raises(TokenError):
        Signer(["new-key"]).parse_address_token("reply", old.reply)


def test_links_issued_before_per_message_tokens_keep_working(links):
    legacy = _url_token(links.unsubscribe_url(12, 3, 45))
    assert len(legacy.rpartition("-")[2]) == 16  # the older base32 shape
    assert links.parse_unsubscribe_token(legacy) == (12, 3, 45)
    assert links.parse_reply_address(links.reply_address(12, 45)) == (12, 45)
    assert links.parse_message_id(links.message_id(12, 45)) == (12, 45)



def test_address_token_macs_are_spelled_exactly_as_base64_spells_them(links):
    """The table-driven base32 of the address tokens (the view link's, in every message) is the
    standard one: a token issued before it still verifies, and one issued now reads the same."""
    import base64
    import hashlib
    import hmac
    import os

    from bulletin.audience.tokens import _base32

    for mac in [bytes(10), b"\xff" * 10, *(os.urandom(10) for _ in range(5000))]:
        assert _base32(mac) == base64.b32encode(mac).decode().lower().rstrip("=")
    key = links.settings.secret_keys[0]
    old = hmac.new(key.encode(), b"view:7-1b", digestmod=hashlib.sha256).digest()[:10]
    issued_before = "7-1b-" + base64.b32encode(old).decode().lower().rstrip("=")
    assert links.view_url(7, 47).endswith("/view/" + issued_before)
    assert links.parse_view_token(issued_before) == (7, 47)
