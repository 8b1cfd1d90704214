"""The web archive: sent issues of public lists only, newest first, each the same render as the email."""

from __future__ import annotations

import lxml.html
from fastapi.testclient import TestClient
from sqlmodel import Session

from bulletin.audience.lifecycle import subscribe
from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.models import Delivery, IssueRecord, Send
from bulletin.render.compiled import Compiled, Template
from tests.web.conftest import list_id, path_of


def _issue(db: Session, slug: str, date: str) -> IssueRecord:
    compiled = Compiled(
        slug=slug, title=f"Title {slug}", subject=f"Subject {slug}", preheader="", issue_date=date,
        lists=("shared-services",), html=Template.split("<p>mail</p>", escape=True),
        text=Template.split("mail", escape=False), web_html=f"<!doctype html><h1>Web page of {slug}</h1>",
    )
    rec = IssueRecord(slug=slug, title=compiled.title, subject=compiled.subject, issue_date=date,
                      compiled=compiled.to_json(), content_hash=slug)
    db.add(rec)
    db.flush()
    return rec


def _send(db: Session, issue: IssueRecord, list_slug: str, status: str) -> Send:
    send = Send(issue_id=issue.id, list_id=list_id(db, list_slug), status=status)  # type: ignore[arg-type]
    db.add(send)
    db.flush()
    return send


def _arrange(db: Session) -> None:
    _send(db, _issue(db, "2016-03", "2016-03-01"), "shared-services", "done")
    _send(db, _issue(db, "2016-05", "2016-05-01"), "workforce", "sending")
    paused = _send(db, _issue(db, "2016-04", "2016-04-01"), "productivity", "paused")
    sub = subscribe(db, "reader@example.org", [list_id(db, "productivity")], confirmed=True, source="cli", actor="t")
    db.add(Delivery(issue_id=paused.issue_id, subscriber_id=sub.id, send_id=paused.id, state="sent", message_id="<m1@x>"))  # type: ignore[arg-type]
    _send(db, _issue(db, "2016-06-draft", "2016-06-01"), "shared-services", "queued")  # not sent yet
    _send(db, _issue(db, "2016-07-members", "2016-07-01"), "finance", "done")  # members-only list
    _issue(db, "2016-08-built", "2016-08-01")  # never sent anywhere
    db.commit()


def test_index_lists_sent_public_issues_newest_first(client: TestClient, db: Session) -> None:
    _arrange(db)
    page = client.get("/archive/")
    assert page.status_code == 200
    shown = [s for s in ("2016-05", "2016-04", "2016-03") if f'href="/archive/{s}/"' in page.text]
    assert shown == ["2016-05", "2016-04", "2016-03"]
    assert page.text.index("/archive/2016-05/") < page.text.index("/archive/2016-04/") < page.text.index("/archive/2016-03/")
    for hidden in ("2016-06-draft", "2016-07-members", "2016-08-built"):
        assert hidden not in page.text


def test_issue_page_is_the_compiled_web_html(client: TestClient, db: Session) -> None:
    _arrange(db)
    resp = client.get("/archive/2016-03/")
    assert resp.status_code == 200 and resp.text == "<!doctype html><h1>Web page of 2016-03</h1>"
    assert resp.headers["referrer-policy"] == "no-referrer"


def test_unsent_private_and_unknown_issues_are_404(client: TestClient, db: Session) -> None:
    _arrange(db)
    for slug in ("2016-06-draft", "2016-07-members", "2016-08-built", "no-such-issue"):
        assert client.get(f"/archive/{slug}/").status_code == 404


def test_view_online_link_of_the_email_opens_the_archive_page(client: TestClient, db: Session, synced: Settings) -> None:
    _arrange(db)
    url = Links.for_settings(synced).view_online_url("2016-03")
    assert client.get(path_of(url)).status_code == 200


def test_empty_archive_says_so(client: TestClient) -> None:
    page = client.get("/archive/")
    assert page.status_code == 200 and "No issues have been published yet" in page.text


def test_archive_serves_the_real_render_of_the_sample_issue(client: TestClient, db: Session, synced: Settings) -> None:
    from bulletin.delivery.issues import publish_issue
    from bulletin.render.build import compile_issue

    compiled = compile_issue(synced, "2016-shared-service-map")
    record = publish_issue(db, compiled)
    _send(db, record, "shared-services", "done")
    db.commit()
    index = client.get("/archive/")
    assert f'href="/archive/{compiled.slug}/"' in index.text and compiled.title in index.text
    page = client.get(Links.for_settings(synced).view_online_url(compiled.slug).replace(synced.public_base_url, ""))
    assert page.status_code == 200 and page.text == compiled.web_html
    assert "<script" not in page.text and "BULLETINSLOT" not in page.text
    doc = lxml.html.fromstring(page.text)
    [main] = doc.xpath("//main")  # one landmark, holding the issue itself
    assert main.getparent().tag == "body" and compiled.title in main.text_content()
    assert main.xpath('.//a[@name="top"]') and main.xpath('.//*[@id="footer"]')


ATOM = "{http://www.w3.org/2005/Atom}"


def test_atom_feed_of_a_public_list_is_valid_and_newest_first(client: TestClient, db: Session) -> None:
    import xml.etree.ElementTree as ET
    from datetime import UTC, datetime

    older = _send(db, _issue(db, "2016-01", "2016-01-01"), "shared-services", "done")
    older.started_at = datetime(2016, 1, 2, 9, 0, tzinfo=UTC)
    newer = _send(db, _issue(db, "2016-02 & <more>", "2016-02-01"), "shared-services", "sending")
    newer.started_at = datetime(2016, 2, 2, 9, 0, tzinfo=UTC)
    db.add_all([older, newer])
    _send(db, _issue(db, "2016-03-draft", "2016-03-01"), "shared-services", "queued")
    _send(db, _issue(db, "2016-04-other", "2016-04-01"), "workforce", "done")
    db.commit()
    resp = client.get("/archive/shared-services/feed.xml")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(resp.content)
    assert feed.tag == f"{ATOM}feed"
    # RFC 4287 4.1.1: exactly one id, title and updated; an author since entries carry none; a self link.
    for tag in ("id", "title", "updated", "author"):
        assert len(feed.findall(f"{ATOM}{tag}")) == 1, tag
    assert feed.find(f"{ATOM}author/{ATOM}name").text  # type: ignore[union-attr]
    assert feed.find(f"{ATOM}title").text == "Shared Services e-bulletin"  # type: ignore[union-attr]
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["self"] == "https://news.example.org/archive/shared-services/feed.xml"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == ["Title 2016-02 & <more>", "Title 2016-01"]  # type: ignore[union-attr]
    for entry in entries:
        for tag in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{tag}")) == 1, tag
        stamp = entry.find(f"{ATOM}updated").text  # type: ignore[union-attr]
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None  # type: ignore[union-attr]
        assert entry.find(f"{ATOM}link").get("rel") == "alternate"  # type: ignore[union-attr]
    assert entries[0].find(f"{ATOM}updated").text == "2016-02-02T09:00:00Z"  # type: ignore[union-attr]
    assert feed.find(f"{ATOM}updated").text == "2016-02-02T09:00:00Z"  # type: ignore[union-attr]
    assert len({e.find(f"{ATOM}id").text for e in entries}) == 2  # type: ignore[union-attr]


def test_feed_and_list_page_exist_only_for_public_lists(client: TestClient, db: Session) -> None:
    import xml.etree.ElementTree as ET

    _arrange(db)
    assert client.get("/archive/finance/feed.xml").status_code == 404
    assert client.get("/archive/no-such-list/feed.xml").status_code == 404
    assert client.get("/archive/finance/").status_code == 404
    empty = ET.fromstring(client.get("/archive/productivity/feed.xml").content)
    assert empty.find(f"{ATOM}updated") is not None
    page = client.get("/archive/shared-services/")
    assert page.status_code == 200 and 'href="/archive/2016-03/"' in page.text
    assert "2016-05" not in page.text  # another list's issue
    assert 'href="/archive/shared-services/feed.xml"' in page.text


def test_signed_view_online_link_opens_an_issue_of_a_members_only_list(client: TestClient, db: Session,
                                                                      synced: Settings) -> None:
    from sqlmodel import select

    _arrange(db)
    record = db.exec(select(IssueRecord).where(IssueRecord.slug == "2016-07-members")).one()
    assert client.get("/archive/2016-07-members/").status_code == 404  # not public
    links = Links.for_settings(synced)
    url = links.view_url(7, record.id)  # type: ignore[arg-type]
    resp = client.get(path_of(url))
    assert resp.status_code == 200 and "Web page of 2016-07-members" in resp.text
    assert "no-store" in resp.headers["cache-control"]
    forged = path_of(url)[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert client.get(forged).status_code == 400
    other = links.unsubscribe_url(7, 1).rsplit("/", 1)[1]
    assert client.get(f"/view/{other}").status_code == 400
    assert client.get(path_of(links.view_url(7, 999_999))).status_code == 404


def test_sent_mail_carries_the_signed_view_online_link(synced: Settings, db: Session) -> None:
    from bulletin.delivery.message import ListIdentity, MessageSkeleton, RecipientRow

    _arrange(db)
    record = _issue(db, "2016-09", "2016-09-01")
    db.commit()
    compiled = Compiled.from_json(record.compiled)
    ml = ListIdentity(id=list_id(db, "finance"), slug="finance", name="Finance", from_name="F",
                      from_address="finance@example.gov.uk", reply_to=None)
    skeleton = MessageSkeleton(synced, compiled, ml, record.id)  # type: ignore[arg-type]
    value = skeleton.recipient(RecipientRow(subscriber_id=5, email="r@example.org", name="R")).view_online_url
    assert "/view/" in value
    assert Links.for_settings(synced).parse_view_token(value.rsplit("/", 1)[1]) == (5, record.id)
