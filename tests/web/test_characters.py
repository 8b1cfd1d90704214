"""One character rule for every text field: the same answer for a new and a known address, never a 500."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from bulletin.audience.lifecycle import subscribe
from bulletin.audience.subscribers import find_subscriber
from bulletin.audience.text import bad_character
from bulletin.config import Settings
from tests.web.conftest import csrf, list_id, make_client

CONTROLS = [chr(c) for c in (*range(0, 32), *range(127, 160))]
FORMATS = ["\u00ad", "\u061c", "\u200b", "\u200e", "\u202e", "\u2066", "\ufeff", "\U000e0001"]
JOINERS = ["\u200c", "\u200d"]
SEPARATORS = ["\u2028", "\u2029"]


def _main(html: str) -> str:
    body = html.split('<main id="main">', 1)[1].split("</main>", 1)[0]
    body = re.sub(r'value="[^"]*"', "", body)  # the echoed form values differ by design
    return re.sub(r"\s+", " ", body)


@pytest.mark.parametrize("field", ["email", "name", "organisation"])
def test_every_control_and_format_character_gets_one_answer_for_new_and_known_addresses(
        synced: Settings, db: Session, field: str) -> None:
    subscribe(db, "known@example.org", [list_id(db, "shared-services")], confirmed=True, source="cli", actor="t")
    db.commit()
    with make_client(synced, ip_limit=100_000, address_limit=100_000) as c:
        token = csrf(c, "/signup/shared-services")
        for n, ch in enumerate(CONTROLS + FORMATS + JOINERS + SEPARATORS):
            answers = []
            for who in (f"new{n}", "known"):
                data = {"csrf_token": token, "email": f"{who}@example.org", "name": "Ann", "organisation": "Council"}
                data[field] = f"{who}{ch}x@example.org" if field == "email" else f"Ann{ch}Example"
                resp = c.post("/signup/shared-services", data=data)
                assert resp.status_code != 500
                answers.append((resp.status_code, _main(resp.text)))
            assert answers[0] == answers[1], (field, hex(ord(ch)))
            accepted = field != "email" and ch in JOINERS
            assert (answers[0][0] == 200) == accepted, (field, hex(ord(ch)), answers[0][0])


def test_joiners_inside_a_name_are_stored(synced: Settings, db: Session) -> None:
    name = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f4bb"  # Persian ZWNJ, emoji ZWJ
    with make_client(synced) as c:
        token = csrf(c, "/signup/shared-services")
        resp = c.post("/signup/shared-services", data={"csrf_token": token, "email": "zwj@example.org", "name": name})
    assert resp.status_code == 200
    sub = find_subscriber(db, "zwj@example.org")
    assert sub is not None and sub.name == name


@pytest.mark.parametrize(("value", "field", "refused"), [
    ("Ann\tExample", "name", True), ("Ann\u200dExample", "name", False), ("Ann\u200dExample", "organisation", False),
    ("Ann\u200dExample", "email", True), ("Ann\u200dExample", "role", True), ("Ann\u00adExample", "name", True),
    ("Ann\u2028Example", "name", True), ("Ann Example", "name", False), ("Zoë Łukasz 山田", "name", False),
])
def test_the_rule_itself(value: str, field: str, refused: bool) -> None:
    assert (bad_character(value, field) is not None) is refused
