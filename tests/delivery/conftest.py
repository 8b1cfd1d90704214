"""Delivery fixtures: a real aiosmtpd sink, a compiled issue built from slot markers, bulk subscribers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from bulletin.audience.addresses import hash_normalised
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.models import MailingList, Subscriber, Subscription, utcnow
from bulletin.render.compiled import BlockRef, Compiled, Template, marker
from bulletin.statuses import SubscriptionState
from tests.smtp_sink import SmtpSink, smtp_sink


def make_compiled(slug: str = "2026-05-test", *, filler: int = 20, extra_html: str = "") -> Compiled:
    """A compiled issue with every slot in both bodies, long lines and non-ASCII text."""
    para = "Shared services news: payroll, HR and ICT across the partner councils — café. " * filler
    html = (
        "<!doctype html><html><body><div><a name=\"top\" id=\"top\"></a><a href=\"#b1\">News</a></div>"
        f"<p>Dear {marker('name')},</p><h2><a name=\"b1\" id=\"b1\">News</a></h2><p>{para}</p><a href=\"#top\">Back to top</a>"
        f"<a href=\"{marker('view_online_url')}\">View online</a> "
        f"<a href=\"mailto:{marker('reply_address')}?subject=Re%3A%20News%20%5Bb1%5D\">Reply</a> "
        f"<a href=\"{marker('preferences_url')}\">Preferences</a> "
        f"<a href=\"{marker('unsubscribe_url')}\">Unsubscribe</a>{extra_html}"
        "</body></html>"
    )
    text = (
        f"Dear {marker('name')},\n\nNews\n\n{para}\n\nView online: {marker('view_online_url')}\n"
        f"Reply: {marker('reply_address')}\nPreferences: {marker('preferences_url')}\n"
        f"Unsubscribe: {marker('unsubscribe_url')}\n"
    )
    return Compiled(
        slug=slug, title="Test issue", subject="Shared services — May update", preheader="",
        issue_date="2026-05-01", lists=("shared-services",),
        html=Template.split(html, escape=True), text=Template.split(text, escape=False),
        web_html="<p>web</p>", blocks=(BlockRef("b1", "article", "News"),),
    )


def footer_compiled() -> Compiled:
    """`make_compiled` with the sender's footer (list slots) in both parts, as the real templates have."""
    c = make_compiled()
    foot = f"{marker('list_name')} from {marker('organisation')}, {marker('postal_address')}"
    html = Template.split("".join(c.html.fill({s: marker(s) for s in c.html.slots})).replace(
        "</body>", f"<p>{foot}</p></body>"), escape=True)
    text = Template.split(c.text.fill({s: marker(s) for s in c.text.slots}) + f"-- \n{foot}\n", escape=False)
    return dataclasses.replace(c, html=html, text=text)


def add_list(engine: Engine, slug: str = "shared-services") -> int:
    with session_scope(engine) as session:
        ml = MailingList(slug=slug, name="Shared Services e-bulletin", from_name="Équipe Shared Services",
                         from_address="bulletin@shared-services.example.gov.uk",
                         reply_to="shared-services@example.gov.uk")
        session.add(ml)
        session.flush()
        return int(ml.id or 0)


def add_subscribers(engine: Engine, list_id: int, count: int, *, start: int = 0,
                    state: str = SubscriptionState.CONFIRMED) -> list[str]:
    """`count` confirmed subscribers r<i>@example.org, inserted in bulk (the audience API is per person)."""
    emails = [f"r{i}@example.org" for i in range(start, start + count)]
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(insert(Subscriber), [
            {"email": e, "email_hash": hash_normalised(e), "name": f"Reader {i}", "organisation": "",
             "attributes": {}, "suppressed": False, "created_at": now, "updated_at": now}
            for i, e in zip(range(start, start + count), emails, strict=True)])
        ids = dict(session.exec(  # type: ignore[call-overload]
            Subscriber.__table__.select().with_only_columns(Subscriber.email, Subscriber.id)  # type: ignore[attr-defined]
        ).all())
        session.execute(insert(Subscription), [
            {"subscriber_id": ids[e], "list_id": list_id, "state": state, "created_at": now,
             "updated_at": now, "confirmed_at": now} for e in emails])
    return emails


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as s:
        yield s


def smtp_settings(settings: Settings, sink: SmtpSink, connections: int = 4) -> Settings:
    return settings.model_copy(update={"transport": "smtp", "smtp_host": sink.host, "smtp_port": sink.port,
                                       "smtp_connections": connections, "smtp_timeout": 10.0})
