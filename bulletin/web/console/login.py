"""GET/POST /admin/login and POST /admin/logout."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bulletin.accounts import SignInRefused, forget_old, sign_in, sign_out
from bulletin.web.console.auth import (
    POLICY,
    account_of,
    clear_session_cookie,
    page,
    safe_next,
    session_token,
    set_session_cookie,
)
from bulletin.web.context import web_of
from bulletin.web.security import read_form

router = APIRouter()


@router.get("/admin/login")
def login_page(request: Request, next: str = "/admin") -> Response:  # noqa: A002 - the query name
    if account_of(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "admin/login.html", None, {"next": safe_next(next), "error": ""})


@router.post("/admin/login")
async def login_post(request: Request) -> Response:
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    email, password = str(form.get("email") or "")[:320], str(form.get("password") or "")[:1000]
    target = safe_next(str(form.get("next") or ""))

    def run() -> str:
        with web.session() as session:
            forget_old(session, POLICY)
        with web.session() as session:
            token, _account = sign_in(session, email, password, ip=web.ip(request), policy=POLICY,
                                      previous=session_token(request))
            return token

    try:
        token = await run_in_threadpool(run)
    except SignInRefused as exc:
        return page(request, "admin/login.html", None, {"next": target, "error": str(exc), "email": email}, 400)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, web, token)
    return response


@router.post("/admin/logout")
async def logout(request: Request) -> Response:
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)

    def run() -> None:
        with web.session() as session:
            sign_out(session, session_token(request))

    await run_in_threadpool(run)
    response = RedirectResponse("/admin/login", status_code=303)
    clear_session_cookie(response, web)
    return response
