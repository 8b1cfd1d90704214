"""Signup (one list or several), referral links and the confirmation link.

A signup is answered with the same page whatever the address's state, and the
honeypot answers bots with that page too, so neither tells anyone anything.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience import optin
from bulletin.audience.addresses import address_hash, normalise_address
from bulletin.audience.subscribers import get_list
from bulletin.errors import AddressError, DeliveryError, TokenError
from bulletin.logs import log_event
from bulletin.web.context import WebContext, web_of
from bulletin.web.security import FormRejected, check_csrf, choice_fields, read_form, text_field

router = APIRouter()
HONEYPOT = "website"


def _lists(web: WebContext) -> list[Any]:
    with web.session() as session:
        return optin.signup_lists(session)


def _form_page(request: Request, lists: list[Any], *, single: bool, values: dict[str, object] | None = None,
               error: str | None = None, error_field: str | None = None, ref: str = "",
               status: int = 200) -> Response:
    ctx = {"lists": lists, "single": single, "values": values or {}, "error": error,
           "error_field": error_field, "ref": ref}
    return web_of(request).render(request, "signup.html", ctx, status)


@router.get("/signup")
def signup_all(request: Request) -> Response:
    return _form_page(request, _lists(web_of(request)), single=False)


@router.get("/signup/{slug}")
def signup_one(request: Request, slug: str) -> Response:
    with web_of(request).session() as session:
        ml = get_list(session, slug)
    return _form_page(request, [ml], single=True)


@router.get("/refer/{token}")
def refer(request: Request, token: str) -> Response:
    """A colleague's shared link: the list's form, carrying the signed referral to the consent log."""
    web = web_of(request)
    _referrer, list_id = web.links.parse_referral_token(token)
    with web.session() as session:
        ml = optin.list_by_id(session, list_id) if list_id is not None else None
        if ml is None:
            raise TokenError("this link is not valid")
    return _form_page(request, [ml], single=True, ref=token)


@router.post("/signup")
async def post_signup_all(request: Request) -> Response:
    return await _post_signup(request, None)


@router.post("/signup/{slug}")
async def post_signup_one(request: Request, slug: str) -> Response:
    return await _post_signup(request, slug)


async def _post_signup(request: Request, slug: str | None) -> Response:
    web = web_of(request)
    if slug is not None:
        lists = [ml for ml in await run_in_threadpool(_lists, web) if ml.slug == slug]
        if not lists:
            with web.session() as session:
                get_list(session, slug)  # raises NotFound -> 404
    else:
        lists = await run_in_threadpool(_lists, web)
    if not web.ip_limiter.hit(web.ip(request)):
        return _too_many(request)
    form = await read_form(request, web.options.max_body)
    check_csrf(web.settings.secret_keys, request, form)
    values = {k: v for k, v in form.items() if k in ("email", "name", "organisation")}
    try:
        req = _signup_request(request, web, form, lists, slug)
    except (FormRejected, AddressError) as exc:
        field = exc.field if isinstance(exc, FormRejected) else "email"
        return _form_page(request, lists, single=slug is not None, values=values, error=str(exc),
                          error_field=field, ref=str(form.get("ref") or ""), status=getattr(exc, "status", 400))
    if form.get(HONEYPOT):
        log_event("bulletin.web", "signup.honeypot")
        return web.render(request, "signup_done.html")
    if not web.address_limiter.hit(address_hash(req.email)):
        return _too_many(request)
    try:
        outcome = await run_in_threadpool(_run_signup, web, req)
        log_event("bulletin.web", "signup", outcome=outcome.value, lists=list(req.list_slugs))
    except DeliveryError as exc:
        # Same page: the requester must not learn anything; the operator sees the log line.
        log_event("bulletin.web", "signup.mail_failed", level=logging.WARNING, error=str(exc))
    return web.render(request, "signup_done.html")


def _signup_request(request: Request, web: WebContext, form, lists: list[Any],  # type: ignore[no-untyped-def]
                    slug: str | None) -> optin.SignupRequest:
    email = normalise_address(text_field(form, "email", required=True))
    name = text_field(form, "name")
    organisation = text_field(form, "organisation")
    text_field(form, HONEYPOT)
    chosen = [slug] if slug else choice_fields(form.getlist("list"), "list", [m.slug for m in lists])
    if not chosen:
        raise FormRejected("choose at least one bulletin", field="list")
    return optin.SignupRequest(
        email=email, name=name, organisation=organisation, list_slugs=tuple(chosen),
        page=request.url.path, ip=web.ip(request), user_agent=web.user_agent(request),
        referrer_id=_referrer(web, text_field(form, "ref")),
    )


def _referrer(web: WebContext, ref: str) -> int | None:
    """The subscriber who shared the link, or None: a bad referral never blocks a signup."""
    if not ref:
        return None
    try:
        return web.links.parse_referral_token(ref)[0]
    except TokenError:
        return None


def _run_signup(web: WebContext, req: optin.SignupRequest) -> optin.SignupOutcome:
    with web.session() as session:
        return optin.signup(session, web.links, req, window=web.options.confirm_delta)


def _too_many(request: Request) -> Response:
    response = web_of(request).render(request, "message.html", {
        "title": "Too many requests",
        "message": "Too many signups from here in a short time. Please wait a few minutes and try again.",
    }, 429)
    response.headers["Retry-After"] = "600"
    return response


@router.get("/confirm/{token}")
def confirm(request: Request, token: str) -> Response:
    web = web_of(request)
    with web.session() as session:
        result = optin.confirm(session, web.links, token, ip=web.ip(request),
                                     user_agent=web.user_agent(request))
    return web.render(request, "confirmed.html", {"result": result})
