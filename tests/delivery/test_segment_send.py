"""Sending to segments: the ledger records the segment, a second segment never re-mails anyone,
each message carries only the blocks meant for its reader, and the report splits by segment."""

from __future__ import annotations

import email
import json
import re
from email import policy

import pytest
from sqlmodel import select

from bulletin.audience.addresses import hash_normalised
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.models import Delivery, MailingList, Subscriber, Subscription
from bulletin.statuses import SubscriptionState
from tests.conftest import cli_runner
from tests.render.test_targeting import TARGETS

ISSUE = "2016-shared-service-map"
SEGMENTS = """\
[[segment]]
name = "finance"
list = "shared-services"
condition = "role contains 'finance'"

[[segment]]
name = "north"
list = "shared-services"
condition = "region = 'north'"
"""
ROLES = ["Finance officer", "HR lead", "ICT architect", "Head of finance", ""]
REGIONS = ["north", "south", "north", "east"]


@pytest.fixture
def people(settings: Settings, engine) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    rows = [(f"p{i}@example.org", ROLES[i % len(ROLES)], REGIONS[i % len(REGIONS)]) for i in range(40)]
    with session_scope(engine) as session:
        ml = MailingList(slug="shared-services", name="Shared Services", from_name="Team",
                         from_address="bulletin@shared-services.example.gov.uk")
        session.add(ml)
        session.flush()
        for address, role, region in rows:
            attrs = {"region": region} | ({"role": role} if role else {})
            sub = Subscriber(email=address, email_hash=hash_normalised(address), name=address.split("@")[0], attributes=attrs)
            session.add(sub)
            session.flush()
            session.add(Subscription(subscriber_id=sub.id, list_id=ml.id, state=SubscriptionState.CONFIRMED))
    (settings.workspace / "subscribers" / "segments.toml").write_text(SEGMENTS, encoding="utf-8")
    folder = settings.workspace / "content" / ISSUE
    for name, audience in TARGETS.items():
        text = (folder / name).read_text(encoding="utf-8")
        (folder / name).write_text(text.replace("---\n", f"---\naudience: \"{audience}\"\n", 1), encoding="utf-8")
    return rows


@pytest.fixture
def cli(settings: Settings, engine):  # type: ignore[no-untyped-def]
    env = {"BULLETIN_DATABASE_URL": settings.effective_database_url,
           "BULLETIN_PUBLIC_BASE_URL": settings.public_base_url,
           "BULLETIN_SENDING_DOMAIN": settings.sending_domain}
    return cli_runner(settings, env)


def outbox(settings: Settings) -> list[email.message.EmailMessage]:
    new = settings.outbox_path / "new"
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(new.iterdir())]  # type: ignore[misc]


def test_two_segments_in_a_row_mail_nobody_twice(cli, settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    finance = {a for a, role, _ in people if "finance" in role.lower()}
    north = {a for a, _, region in people if region == "north"}
    code, out = cli("send", ISSUE, "--segment", "finance", "--quiet")
    assert code == 0, out
    assert f"queued {len(finance)} new recipients of segment finance" in out
    code, out = cli("send", ISSUE, "--segment", "north", "--quiet")
    assert code == 0, out
    assert f"queued {len(north - finance)} new recipients" in out and f"{len(north & finance)} already had it" in out
    msgs = outbox(settings)
    to = [str(m["To"]).rsplit("<", 1)[-1].strip(">") for m in msgs]
    assert len(to) == len(set(to)) == len(finance | north)
    assert set(to) == finance | north
    with session_scope(engine) as session:
        rows = session.exec(select(Subscriber.email, Delivery.segment).join(
            Delivery, Delivery.subscriber_id == Subscriber.id)).all()
    assert {e for e, s in rows if s == "finance"} == finance
    assert {e for e, s in rows if s == "north"} == north - finance

    code, out = cli("report", ISSUE, "--json")
    by_segment = {f["segment"]: f for f in json.loads(out)["by_segment"]}
    assert by_segment["finance"]["sent"] == len(finance)
    assert by_segment["north"]["recipients"] == len(north - finance)
    code, out = cli("report", ISSUE)
    assert "By segment" in out


def test_each_message_carries_only_its_readers_blocks(cli, settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("send", ISSUE, "--list", "shared-services", "--quiet")
    assert code == 0, out
    by_role = {a: (role, region) for a, role, region in people}
    for msg in outbox(settings):
        address = str(msg["To"]).rsplit("<", 1)[-1].strip(">")
        role, region = by_role[address]
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        anchors = set(re.findall(r'<h2\b[^>]*><a name="[a-z0-9-]+" id="([a-z0-9-]+)"', html))
        assert ("briefing-papers" in anchors) == ("finance" in role.lower()), address
        assert ("template-documents" in anchors) == ("hr" in role.lower()), address
        assert ("impact-report" in anchors) == (region in ("north", "east")), address
        assert ("learning-event" in anchors) == (role == ""), address
        shown = len(anchors) - 1
        assert re.findall(r"^(\d+)\. ", text, flags=re.M) == [str(n) for n in range(1, shown + 1)] * 2


def test_segment_of_another_list_is_refused(cli, settings, people) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("send", ISSUE, "--list", "productivity", "--segment", "finance", "--quiet")
    assert code == 7 and "part of list 'shared-services'" in out
    code, out = cli("send", ISSUE, "--segment", "nobody", "--quiet")
    assert code == 3 and "no such segment" in out


def test_issue_toml_segments_are_the_default(cli, settings, people) -> None:  # type: ignore[no-untyped-def]
    toml = settings.workspace / "content" / ISSUE / "issue.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\nsegments = ["north"]\n', encoding="utf-8")
    code, out = cli("send", ISSUE, "--dry-run")
    north = sum(1 for _, _, region in people if region == "north")
    assert code == 0 and f"segment north of shared-services: {north} recipients would get" in out


def test_check_warns_of_a_block_for_nobody_and_preview_as_shows_one_reader(settings, engine, people) -> None:  # type: ignore[no-untyped-def]
    from bulletin.render.build import build_issue
    from bulletin.render.checks import check_issue
    from bulletin.render.preview import write_as_reader

    report = check_issue(settings, ISSUE, engine_for_targeting=lambda: engine)
    assert report.ok and not [w for w in report.warnings if "matches nobody" in w]
    block = settings.workspace / "content" / ISSUE / "01-map-relaunch.md"
    block.write_text(block.read_text(encoding="utf-8").replace("---\n", "---\naudience: role = 'astronaut'\n", 1),
                     encoding="utf-8")
    report = check_issue(settings, ISSUE, engine_for_targeting=lambda: engine)
    nobody = [w for w in report.warnings if "matches nobody" in w]
    assert len(nobody) == 1 and "'map-relaunch'" in nobody[0]

    result = build_issue(settings, ISSUE)
    shown = {b.anchor for b in write_as_reader(settings, engine, result, "p0@example.org")}  # finance, north
    assert {"briefing-papers", "impact-report"} <= shown
    assert not {"template-documents", "map-relaunch", "learning-event"} & shown
    html = result.email_html.read_text(encoding="utf-8")
    assert 'id="briefing-papers"' in html and 'id="template-documents"' not in html and "Dear p0," in html
