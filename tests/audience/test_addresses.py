"""Address normalisation against email-validator's own test corpus."""

from __future__ import annotations

import json

import pytest

from bulletin.audience.addresses import (
    address_hash,
    full_normalise,
    has_control_chars,
    normalise_address,
)
from bulletin.errors import AddressError
from tests.conftest import corpus


@pytest.fixture(scope="module")
def cases() -> dict[str, list[dict]]:
    return json.loads(corpus("email-validator", "cases.json").read_text(encoding="utf-8"))


def _verdict(fn, address: str) -> str:
    try:
        return fn(address)
    except AddressError:
        return "ERROR"


def test_valid_corpus_addresses_normalise_to_email_validators_form_lower_cased(cases):
    # Quoted local parts and display names are refused (email-validator defaults): an import column holds a bare address.
    valid = [c for c in cases["test_email_valid"] + cases["test_email_valid_intl_local_part"]
             if '"' not in c["email_input"] and "<" not in c["email_input"]]
    assert len(valid) > 20
    for case in valid:
        assert normalise_address(case["email_input"]) == case["output"]["normalized"].lower(), case


@pytest.mark.parametrize("group", [
    "test_email_invalid_syntax", "test_email_invalid_reserved_domain", "test_email_invalid_syntax_display_name",
])
def test_invalid_corpus_addresses_raise_address_error_naming_the_address(cases, group):
    for case in cases[group]:
        with pytest.raises(AddressError) as info:
            normalise_address(case["email_input"])
        assert "address" in str(info.value)


def test_unsafe_unicode_characters_are_rejected(cases):
    for case in cases["test_email_unsafe_character"]:
        with pytest.raises(AddressError):
            normalise_address(f"{case['s']}@example.com")


def test_quoted_local_parts_are_refused_like_email_validator_does_by_default(cases):
    for case in cases["test_email_valid_only_if_quoted_local_part"]:
        with pytest.raises(AddressError):
            normalise_address(case["email_input"])


def test_pyisemail_errors_are_rejected_and_plain_valid_addresses_accepted(cases):
    for case in cases["test_pyisemail_tests"]:
        verdict = _verdict(normalise_address, case["email_input"])
        if case["status"].startswith("ISEMAIL_ERR"):
            assert verdict == "ERROR", case
        if case["status"] == "ISEMAIL_VALID":
            assert verdict != "ERROR", case


def test_fast_path_agrees_with_email_validator_on_every_corpus_input(cases):
    inputs = [c.get("email_input") for group in cases.values() for c in group if c.get("email_input")]
    inputs += ["Jane.Doe@Example.ORG", "x@xn--5nqv22n.xn--lhr59c", "a" * 64 + "@example.org",
               "a" * 65 + "@example.org", "user@" + "d" * 63 + ".example.org", "a@b.c"]
    assert len(inputs) > 250
    for address in inputs:
        assert _verdict(normalise_address, address) == _verdict(full_normalise, address.strip(" ")), address


def test_case_and_surrounding_spaces_do_not_make_a_different_person():
    assert normalise_address("  Jane.Doe@EXAMPLE.org ") == "jane.doe@example.org"
    assert address_hash("Jane.Doe@example.ORG") == address_hash("jane.doe@example.org")
    assert len(address_hash("jane.doe@example.org")) == 64


@pytest.mark.parametrize("raw", ["jane@example.org\r\nBcc: x@example.org", "jane@example.org\n", "\tjane@example.org", ""])
def test_cr_lf_tab_or_empty_addresses_are_errors_not_noise(raw):
    with pytest.raises(AddressError):
        normalise_address(raw)


def test_control_character_detection():
    assert has_control_chars("Jane\r\nBcc: x") and has_control_chars("a\tb") and has_control_chars("a\u202eb")
    assert not has_control_chars("Siân O'Brien-Smith, Ysgol Gymraeg") and not has_control_chars("a\u00a0b")
