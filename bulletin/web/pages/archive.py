"""The archive: the public index, a page and an Atom feed per public list, each issue's page, and /view/.

`/archive/<slug>/` is a list's page when a public list has that slug, else an
issue's page (issue slugs are dated, list slugs are not, so they do not meet
in practice). `/view/<token>` is the signed per-recipient "view online" link
of every mail: it opens the issue whatever the list's `archive_public`.
Redirects are built from `public_base_url`, never from the Host header.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bulletin.delivery import archive
from bulletin.delivery.feed import atom_feed
from bulletin.errors import NotFound, TokenError
from bulletin.web.context import web_of

router = APIRouter()
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}


@router.get("/archive")
def archive_redirect(request: Request) -> Response:
    return RedirectResponse(web_of(request).url("/archive/"), status_code=308)


@router.get("/archive/")
def archive_index(request: Request) -> Response:
    web = web_of(request)
    with web.session() as session:
        issues = archive.public_issues(session)
    return web.render(request, "archive.html", {"issues": issues})


@router.get("/archive/{slug}")
def archive_slash(request: Request, slug: str) -> Response:
    return RedirectResponse(web_of(request).url(f"/archive/{slug}/"), status_code=308)


@router.get("/archive/{slug}/")
def archive_page(request: Request, slug: str) -> Response:
    web = web_of(request)
    with web.session() as session:
        try:
            page = archive.public_list_archive(session, slug)
        except NotFound:
            return HTMLResponse(archive.issue_page(session, slug), headers=PUBLIC_CACHE)
    return web.render(request, "archive_list.html", {"page": page})


@router.get("/archive/{slug}/feed.xml")
def archive_feed(request: Request, slug: str) -> Response:
    web = web_of(request)
    with web.session() as session:
        page = archive.public_list_archive(session, slug)
    body = atom_feed(page, web.settings.public_base_url, fallback_updated=datetime(2000, 1, 1, tzinfo=UTC))
    return Response(body, media_type="application/atom+xml", headers=PUBLIC_CACHE)


@router.get("/view/{token}")
def view_online(request: Request, token: str) -> Response:
    web = web_of(request)
    try:
        _subscriber_id, issue_id = web.links.parse_view_token(token)
    except TokenError:
        raise TokenError("this link is not valid") from None
    with web.session() as session:
        page = archive.view_page(session, issue_id)
    return HTMLResponse(page, headers={"Cache-Control": "private, no-store"})
