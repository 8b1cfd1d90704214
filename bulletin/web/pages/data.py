"""The mailed single-use links: /my-data/<token> (export) and /erase/<token>.

A GET shows what the link will do and a button, because mail scanners fetch
links; the POST of that button uses the link up (`audience.data_requests`).
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience import data_requests
from bulletin.forget import erase_everywhere
from bulletin.web.context import WebContext, web_of
from bulletin.web.security import FormRejected, read_form

router = APIRouter()


def _page(request: Request, kind: str, token: str) -> Response:
    web = web_of(request)
    with web.session() as session:
        req = data_requests.open_request(session, web.links, kind, token)
    return web.render(request, "data_request.html", {"req": req, "token": token})


@router.get("/my-data/{token}")
def export_page(request: Request, token: str) -> Response:
    return _page(request, "export", token)


@router.get("/erase/{token}")
def erase_page(request: Request, token: str) -> Response:
    return _page(request, "erase", token)


@router.post("/my-data/{token}")
async def export(request: Request, token: str) -> Response:
    """Everything held about the person, as a JSON download, once."""
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    data = await run_in_threadpool(_export, web, request, token)
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="bulletin-my-data.json"'})


def _export(web: WebContext, request: Request, token: str) -> dict:  # type: ignore[type-arg]
    with web.session() as session:
        return data_requests.export_by_link(session, web.links, token, ip=web.ip(request),
                                            user_agent=web.user_agent(request))


@router.post("/erase/{token}")
async def erase(request: Request, token: str) -> Response:
    """Right to erasure; the page's checkbox guards against a slip of the finger."""
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    if form.get("confirm") != "yes":
        raise FormRejected("tick the box to confirm that you want everything erased", field="confirm")
    await run_in_threadpool(_erase, web, token)
    return web.render(request, "message.html", {
        "title": "Your data has been erased",
        "message": "We no longer hold your name, organisation or address, and you will receive no more bulletins.",
    })


def _erase(web: WebContext, token: str) -> None:
    erase_everywhere(web.engine, web.settings,
                     lambda session: data_requests.erase_by_link(session, web.links, token))
