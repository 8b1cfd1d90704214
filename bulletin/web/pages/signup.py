"""Signup (one list or several), referral links and the confirmation page.

A signup is answered with the same page whatever the address's state, and the
honeypot answers bots with that page too, so neither tells anyone anything;
the mail it causes is queued in the signup's own transaction and sent by the
notice sender, so the answer never waits on a mail server either. Only lists
with `public_signup` exist here: any other slug is a 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience import optin
from bulletin.audience.addresses import normalise_address
from bulletin.audience.subscribers import keyed_address_hash
from bulletin.errors import AddressError, NotFound, TokenError
from bulletin.logs import log_event
from bulletin.web.context import WebContext, web_of
from bulletin.web.security import FormRejected, choice_fields, read_form, text_field

router = APIRouter()
HONEYPOT = "website"


def _form_page(request: Request, lists: list[Any], *, single: bool, values: dict[str, object] | None = None,
               error: str | None = None, error_field: str | None = None, ref: str = "",
               status: int = 200) -> Response:
    ctx = {"lists": lists, "single": single, "values": values or {}, "error": error,
           "error_field": error_field, "ref": ref}
    return web_of(request).render(request, "signup.html", ctx, status)


def _public(web: WebContext, slug: str | None) -> list[Any]:
    """The public lists, or the one `slug` names; NotFound (404) for lists not open to the public."""
    lists = web.public_lists()
    if slug is None:
        return lists
    chosen = [ml for ml in lists if ml.slug == slug]
    if not chosen:
        raise NotFound("no such bulletin", where=f"list {slug!r}")
    return chosen


@router.get("/signup")
def signup_all(request: Request) -> Response:
    return _form_page(request, _public(web_of(request), None), single=False)


@router.get("/signup/{slug}")
def signup_one(request: Request, slug: str) -> Response:
    return _form_page(request, _public(web_of(request), slug), single=True)


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
    lists = await run_in_threadpool(_public, web, slug)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    values = {k: v for k, v in form.items() if k in ("email", "name", "organisation")}
    ip = web.ip(request)
    try:
        req = _signup_request(request, web, form, lists, slug)
    except (FormRejected, AddressError) as exc:
        if not await run_in_threadpool(_count_ip, web, ip):
            return _too_many(request)
        field = exc.field if isinstance(exc, FormRejected) else "email"
        return _form_page(request, lists, single=slug is not None, values=values, error=str(exc),
                          error_field=field, ref=str(form.get("ref") or ""), status=getattr(exc, "status", 400))
    needs_mail = any(ml.double_opt_in for ml in lists if ml.slug in req.list_slugs)
    if form.get(HONEYPOT):
        log_event("bulletin.web", "signup.honeypot")
        if not await run_in_threadpool(_count_ip, web, ip):
            return _too_many(request)
        return web.render(request, "signup_done.html", {"needs_mail": needs_mail})
    outcome = await run_in_threadpool(_run_signup, web, req)
    if outcome is None:
        return _too_many(request)
    log_event("bulletin.web", "signup", outcome=outcome.value, lists=list(req.list_slugs))
    if outcome in (optin.SignupOutcome.MAIL_QUEUED, optin.SignupOutcome.ALREADY_MAILED):
        web.wake_sender()
    return web.render(request, "signup_done.html", {"needs_mail": needs_mail})


def _count_ip(web: WebContext, ip: str) -> bool:
    """Count a post that will not sign anyone up (bad form, honeypot) against the IP's limit."""
    with web.session() as session:
        return web.ip_limiter.hit(session, ip)


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


def _run_signup(web: WebContext, req: optin.SignupRequest) -> optin.SignupOutcome | None:
    """Rate limits and the signup in one transaction (the queued mail commits with it); None when limited."""
    with web.session() as session:
        if not (web.ip_limiter.hit(session, req.ip or "unknown")
                and web.address_limiter.hit(session, keyed_address_hash(session, req.email))):
            return None
        return optin.signup(session, web.links, req, window=web.options.confirm_delta)


def _too_many(request: Request) -> Response:
    response = web_of(request).render(request, "message.html", {
        "title": "Too many requests",
        "message": "Too many signups from here in a short time. Please wait a few minutes and try again.",
    }, 429)
    response.headers["Retry-After"] = "600"
    return response


@router.get("/confirm/{token}")
def confirm_page(request: Request, token: str) -> Response:
    """The lists and the masked address, and one button: mail scanners fetch links, people press buttons."""
    web = web_of(request)
    with web.session() as session:
        preview = optin.confirm_preview(session, web.links, token)
    return web.render(request, "confirm.html", {"preview": preview, "token": token})


@router.post("/confirm/{token}")
async def confirm(request: Request, token: str) -> Response:
    """The press: consent recorded with this request's IP and user agent."""
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    result = await run_in_threadpool(_confirm, web, request, token)
    return web.render(request, "confirmed.html", {"result": result})


def _confirm(web: WebContext, request: Request, token: str) -> optin.ConfirmResult:
    with web.session() as session:
        return optin.confirm(session, web.links, token, ip=web.ip(request), user_agent=web.user_agent(request))
