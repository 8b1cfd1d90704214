"""Inbound fixtures: a database with two lists, three subscribers and one published issue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bulletin.audience.lifecycle import subscribe
from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.delivery.issues import publish_issue
from bulletin.models import MailingList
from bulletin.render.compiled import BlockRef, Compiled, Template

ISSUE_SUBJECT = "Shared Services e-bulletin: June 2016"


@dataclass
class World:
    settings: Settings
    engine: Engine
    links: Links
    list_ids: list[int]
    subscribers: dict[str, int]
    issue_id: int


def _compiled() -> Compiled:
    text = Template(chunks=("Hello",), slots=(), escape=False)
    return Compiled(slug="2016-06", title="June 2016", subject=ISSUE_SUBJECT, preheader="", issue_date="2016-06-01",
                    lists=("shared-services",), html=text, text=text, web_html="<p>Hello</p>",
                    blocks=(BlockRef("payroll-merger", "story", "Payroll merger"),
                            BlockRef("tell-us", "feedback", "Tell us")))


@pytest.fixture
def world(settings: Settings, engine: Engine) -> World:
    with session_scope(engine) as session:
        lists = []
        for slug in ("shared-services", "workforce"):
            ml = MailingList(slug=slug, name=slug, from_name="Team", from_address=f"{slug}@example.gov.uk")
            session.add(ml)
            session.flush()
            lists.append(ml.id)
        subs = {}
        for addr in ("amina@example.gov.uk", "ben@example.org", "carl@example.org"):
            subs[addr] = subscribe(session, addr, lists, confirmed=True, source="cli", actor="test").id
        issue = publish_issue(session, _compiled())
    return World(settings, engine, Links.for_settings(settings), lists, subs, issue.id)


def mail(*, to: str, frm: str = "Amina <amina@example.gov.uk>", subject: str = "Re: " + ISSUE_SUBJECT,
         body: str = "Thanks, very useful.\n", headers: dict[str, str] | None = None,
         message_id: str = "<m1@client.example.org>") -> bytes:
    """A plain message as a mail client would send it."""
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}", f"Message-ID: {message_id}",
             "Date: Wed, 01 Jun 2016 10:00:00 +0000", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def arf(original_message_id: str, unsubscribe: str = "mailto:x@elsewhere") -> bytes:
    """data/arf.eml: an abuse report returning the original with its Message-ID and List-Unsubscribe."""
    text = (Path(__file__).parent / "data" / "arf.eml").read_text()
    return (text.replace("ORIGINAL_MID", original_message_id).replace("ORIGINAL_UNSUBSCRIBE", unsubscribe)
            .replace("\n", "\r\n").encode())


def dsn(*, to: str, recipient: str, status: str, original_message_id: str = "<x@elsewhere>",
        message_id: str = "<dsn1@mx.example.net>", unsubscribe: str = "mailto:x@elsewhere") -> bytes:
    """An RFC 3464 delivery status notification for one recipient, returning the original's headers."""
    action = "failed" if status.startswith("5") else "delayed"
    return f"""From: MAILER-DAEMON@mx.example.net
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: {message_id}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status[0]}50 {status} mailbox problem

--B
Content-Type: text/rfc822-headers

From: bulletin@news.example.org
To: {recipient}
Subject: {ISSUE_SUBJECT}
Message-ID: {original_message_id}
List-Unsubscribe: <{unsubscribe}>

--B--
""".replace("\n", "\r\n").encode()


def run_cli(world: World, *args: str, input: bytes | str | None = None):  # type: ignore[no-untyped-def]
    """Run `bulletin -w <workspace> ...` against the world's database, as an operator would."""
    from typer.testing import CliRunner

    from bulletin.cli import app

    ws = world.settings.workspace
    toml = ws / "bulletin.toml"
    if not toml.exists():
        toml.write_text(f'database_url = "{world.settings.effective_database_url}"\n'
                        f'sending_domain = "{world.settings.sending_domain}"\n'
                        f'public_base_url = "{world.settings.public_base_url}"\n')
    return CliRunner().invoke(app, ["-w", str(ws), *args], input=input, catch_exceptions=False)
