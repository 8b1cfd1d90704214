"""`bulletin staff ...` and `bulletin audit`, through the command line, and the password rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bulletin.accounts.passwords import check_password, hash_password, verify_password
from bulletin.cli import app
from bulletin.config import Settings
from bulletin.errors import StateError


def bulletin(settings: Settings, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    ws: Path = settings.workspace
    (ws / "bulletin.toml").write_text(f'database_url = "{settings.effective_database_url}"\n')
    return CliRunner().invoke(app, ["-w", str(ws), *args], input=input, env={"COLUMNS": "200"})


def test_staff_commands_add_list_role_disable_and_password(settings: Settings) -> None:
    r = bulletin(settings, "staff", "add", "Ann@Council.example", "--role", "staff", "--password-stdin",
                 input="harbour-lights-91\n")
    assert r.exit_code == 0, r.output
    listed = json.loads(bulletin(settings, "staff", "list", "--json").output)
    assert listed[0]["email"] == "ann@council.example" and listed[0]["role"] == "staff"
    assert bulletin(settings, "staff", "role", "ann@council.example", "admin").exit_code == 0
    r = bulletin(settings, "staff", "password", "ann@council.example", input="new-harbour-lights-92\nnew-harbour-lights-92\n")
    assert r.exit_code == 0, r.output
    for last in (("disable", "ann@council.example"), ("role", "ann@council.example", "staff")):
        refused = bulletin(settings, "staff", *last)
        assert refused.exit_code != 0 and "staff:ann@council.example: is the last enabled admin" in str(refused.exception)
    assert bulletin(settings, "staff", "add", "bob@council.example", "--role", "admin", "--password-stdin",
                    input="harbour-lights-93\n").exit_code == 0
    assert bulletin(settings, "staff", "disable", "ann@council.example").exit_code == 0
    listed = json.loads(bulletin(settings, "staff", "list", "--json").output)
    assert listed[0]["role"] == "admin" and listed[0]["disabled"] is True
    audit = [a for a in json.loads(bulletin(settings, "audit", "--json").output) if "ann@" in a["target"]]
    assert [a["action"] for a in audit] == ["staff.disable", "staff.password", "staff.role", "staff.add"]
    assert all(a["actor"].startswith("cli:") and a["target"].startswith("staff:ann@council.example") for a in audit)


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["--role", "editor", "--password-stdin"], "short-pass\n", "at least 12 characters"),
    (["--role", "editor", "--password-stdin"], "password1234\n", "too common"),
    (["--role", "boss", "--password-stdin"], "harbour-lights-91\n", "unknown role"),
    (["--role", "editor", "--password-stdin"], "\n", "no password on standard input"),
    (["--role", "editor"], "harbour-lights-91\nharbour-lights-92\n", "the two passwords differ"),
])
def test_staff_add_refuses_bad_input_with_one_line(settings: Settings, args: list[str], stdin: str,
                                                   message: str) -> None:
    from bulletin.cli import main  # noqa: F401 - main() turns the error into one line; CliRunner shows it

    r = bulletin(settings, "staff", "add", "ed@council.example", *args, input=stdin)
    assert r.exit_code != 0
    assert message in str(r.exception)


def test_adding_the_same_address_twice_and_unknown_accounts_are_refused(settings: Settings) -> None:
    assert bulletin(settings, "staff", "add", "ed@council.example", "--password-stdin",
                    input="harbour-lights-91\n").exit_code == 0
    again = bulletin(settings, "staff", "add", "ED@council.example", "--password-stdin", input="harbour-lights-91\n")
    assert again.exit_code != 0 and "exists" in str(again.exception)
    missing = bulletin(settings, "staff", "disable", "nobody@council.example")
    assert missing.exit_code != 0 and "no such staff account" in str(missing.exception)


def test_passwords_are_argon2id_and_checked() -> None:
    stored = hash_password("harbour-lights-91")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "harbour-lights-91") and not verify_password(stored, "harbour-lights-92")
    assert not verify_password("not a hash", "harbour-lights-91")
    with pytest.raises(StateError):
        check_password("aaaaaaaaaaaaaaaa")
