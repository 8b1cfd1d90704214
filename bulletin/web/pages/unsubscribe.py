"""Unsubscribe links: GET shows one button, POST leaves; RFC 8058 one-click POST needs no CSRF.

Link scanners prefetch GETs, so a GET never changes anything. A mailbox
provider's one-click POST carries `List-Unsubscribe=One-Click` (urlencoded or
multipart) or nothing, and no cookie: it gets 200 and no redirect, every time.
A form post from our own page carries the CSRF token and is checked.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience import self_service
from bulletin.web.context import WebContext, web_of
from bulletin.web.security import CSRF_FIELD, FormRejected, read_form

router = APIRouter()
ONE_CLICK_FIELD = "List-Unsubscribe"


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, token: str) -> Response:
    web = web_of(request)
    with web.session() as session:
        target = self_service.unsubscribe_target(session, web.links, token)
    return web.render(request, "unsubscribe.html", {"target": target, "token": token})


@router.post("/unsubscribe/{token}")
async def unsubscribe_post(request: Request, token: str) -> Response:
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    if CSRF_FIELD in form:
        web.check_csrf(request, form)
        one_click = False
    elif form.get(ONE_CLICK_FIELD) == "One-Click" or not form:
        one_click = True
    else:
        raise FormRejected("the form has expired; please reload the page and try again", status=403)
    target = await run_in_threadpool(_run, web, request, token, one_click)
    return web.render(request, "unsubscribed.html", {"target": target})


def _run(web: WebContext, request: Request, token: str, one_click: bool) -> self_service.UnsubscribeTarget | None:
    with web.session() as session:
        return self_service.unsubscribe_by_token(session, web.links, token, one_click=one_click,
                                                ip=web.ip(request), user_agent=web.user_agent(request))
