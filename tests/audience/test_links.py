"""Links and tokens: each purpose only verifies as itself, keys rotate, and forged tokens fail the same way."""

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


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def test_unsubscribe_and_preferences_tokens_round_trip(links):
    assert links.parse_unsubscribe_token(_token(links.unsubscribe_url(12, 3, 45))) == (12, 3, 45)
    assert links.parse_unsubscribe_token(_token(links.unsubscribe_url(12, 3))) == (12, 3, None)
    assert links.parse_preferences_token(_token(links.preferences_url(99))) == 99


def test_a_token_for_one_purpose_never_works_for_another(links):
    prefs = _token(links.preferences_url(7))
    unsub = _token(links.unsubscribe_url(7, 1, 1))
    with pytest.raises(TokenError):
        links.parse_unsubscribe_token(prefs)
    with pytest.raises(TokenError):
        links.parse_preferences_token(unsub)
    reply = links.reply_address(7, 1).split("+", 1)[1].split("@")[0]
    with pytest.raises(TokenError):
        links.parse_unsubscribe_token(reply)
    assert links.parse_message_id(f"<b.{reply}@news.example.org>") is None


def test_the_mailto_token_is_not_a_web_unsubscribe_token(links):
    mailto_token = links.unsubscribe_mailto(7, 1).split("+u-", 1)[1].split("@")[0]
    with pytest.raises(TokenError, match="wrong shape"):
        links.parse_unsubscribe_token(mailto_token)


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # MAC changed
    lambda t: "9" + t,  # subscriber changed
    lambda t: "",
    lambda t: "not-a-token",
])
def test_tampered_tokens_fail_with_the_same_words(links, tamper):
    token = tamper(_token(links.unsubscribe_url(12, 3, 45)))
    with pytest.raises(TokenError) as err:
        links.parse_unsubscribe_token(token)
    assert "verify" in str(err.value) or "malformed" in str(err.value)


def test_links_signed_with_a_retired_key_work_until_it_is_dropped(tmp_path):
    old = Links.for_settings(load_settings(tmp_path, secret_keys=["old-key"]))
    url = old.unsubscribe_url(5, 2, 1)
    rotated = Links.for_settings(load_settings(tmp_path, secret_keys=["new-key", "old-key"]))
    assert rotated.parse_unsubscribe_token(_token(url)) == (5, 2, 1)
    dropped = Links.for_settings(load_settings(tmp_path, secret_keys=["new-key"]))
    with pytest.raises(TokenError):
        dropped.parse_unsubscribe_token(_token(url))


def test_url_tokens_expire_and_name_their_purpose(links):
    signer = Signer(["k"])
    token = signer.dumps("confirm", {"s": 1})
    with pytest.raises(TokenError, match="not valid"):
        signer.loads("referral", token)
    with pytest.raises(TokenError, match="expired"):
        signer.loads("confirm", token, max_age=-1)
