"""The public archive: an index of sent issues and each issue's web page."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bulletin.delivery import archive
from bulletin.web.context import web_of

router = APIRouter()


@router.get("/archive/")
def archive_index(request: Request) -> Response:
    web = web_of(request)
    with web.session() as session:
        issues = archive.public_issues(session)
    return web.render(request, "archive.html", {"issues": issues})


@router.get("/archive/{slug}/")
def archive_issue(request: Request, slug: str) -> Response:
    web = web_of(request)
    with web.session() as session:
        page = archive.issue_page(session, slug)
    return HTMLResponse(page, headers={"Cache-Control": "public, max-age=300"})
