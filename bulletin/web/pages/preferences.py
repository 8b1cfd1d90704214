"""The preference centre behind the footer link: bulletins, name and organisation, and data requests.

The footer link is a long-lived bearer key that travels with every forwarded
bulletin, so it can change choices and unsubscribe but never export or erase:
"Email me my data" and "Erase me" only queue a fresh single-use link to the
address (`bulletin.audience.data_requests`; the pages are in `pages/data.py`).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience import data_requests, self_service
from bulletin.web.context import WebContext, web_of
from bulletin.web.security import FormRejected, choice_fields, read_form, text_field

router = APIRouter()


@router.get("/preferences/{token}")
def preferences_page(request: Request, token: str) -> Response:
    web = web_of(request)
    with web.session() as session:
        prefs = self_service.preferences(session, self_service.subscriber_for(session, web.links, token))
    return _page(request, web, prefs, token, saved=False)


@router.post("/preferences/{token}")
async def preferences_save(request: Request, token: str) -> Response:
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    name, organisation = text_field(form, "name"), text_field(form, "organisation")
    prefs = await run_in_threadpool(_save, web, request, token, form.getlist("list"), name, organisation)
    if prefs.to_confirm is not None and prefs.to_confirm.mailed:
        web.wake_sender()  # the confirmation link for the lists ticked
    return _page(request, web, prefs, token, saved=True)


@router.post("/preferences/{token}/request")
async def data_request(request: Request, token: str) -> Response:
    """Queue a mail with a fresh export or erase link; the same page whatever happens next."""
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    web.check_csrf(request, form)
    kind = form.get("kind")
    if kind not in data_requests.KINDS:
        raise FormRejected("choose what to ask for", field="kind")
    prefs = await run_in_threadpool(_request, web, request, token, str(kind))
    web.wake_sender()
    return _page(request, web, prefs, token, saved=False, requested=True)


def _request(web: WebContext, request: Request, token: str, kind: str) -> self_service.Preferences:
    with web.session() as session:
        sub = self_service.subscriber_for(session, web.links, token)
        data_requests.request_link(session, web.links, sub, kind, ip=web.ip(request),
                                   user_agent=web.user_agent(request))
        return self_service.preferences(session, sub)


def _page(request: Request, web: WebContext, prefs: self_service.Preferences, token: str, *, saved: bool,
          requested: bool = False) -> Response:
    """The form, plus a signed "tell a colleague" link for each bulletin the person receives."""
    share = [(c.name, web.links.referral_url(prefs.subscriber_id, c.list_id)) for c in prefs.lists if c.shareable]
    return web.render(request, "preferences.html", {"prefs": prefs, "token": token, "saved": saved, "share": share,
                                                    "requested": requested})


def _save(web: WebContext, request: Request, token: str, chosen: list, name: str,  # type: ignore[type-arg]
          organisation: str) -> self_service.Preferences:
    with web.session() as session:
        sub = self_service.subscriber_for(session, web.links, token)
        slugs = [c.slug for c in self_service.preferences(session, sub).lists]
        picked = choice_fields(chosen, "list", slugs)
        return self_service.update_preferences(session, web.links, sub, picked, name, organisation,
                                              ip=web.ip(request), user_agent=web.user_agent(request),
                                              window=web.options.confirm_delta)
