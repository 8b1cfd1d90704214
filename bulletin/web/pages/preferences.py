"""The preference centre behind a signed link: bulletins, name and organisation, export, erase."""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.audience import self_service
from bulletin.db import forget_old_pages
from bulletin.delivery.outbox import remove_copies
from bulletin.web.context import WebContext, web_of
from bulletin.web.security import FormRejected, check_csrf, choice_fields, read_form, text_field

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
    check_csrf(web.settings.secret_keys, request, form)
    name, organisation = text_field(form, "name"), text_field(form, "organisation")
    prefs = await run_in_threadpool(_save, web, request, token, form.getlist("list"), name, organisation)
    return _page(request, web, prefs, token, saved=True)


def _page(request: Request, web: WebContext, prefs: self_service.Preferences, token: str, *, saved: bool) -> Response:
    """The form, plus a signed "tell a colleague" link for each bulletin the person receives."""
    share = [(c.name, web.links.referral_url(prefs.subscriber_id, c.list_id))
             for c in prefs.lists if c.state == "confirmed"]
    return web.render(request, "preferences.html", {"prefs": prefs, "token": token, "saved": saved, "share": share})


def _save(web: WebContext, request: Request, token: str, chosen: list, name: str,  # type: ignore[type-arg]
          organisation: str) -> self_service.Preferences:
    with web.session() as session:
        sub = self_service.subscriber_for(session, web.links, token)
        slugs = [c.slug for c in self_service.preferences(session, sub).lists]
        picked = choice_fields(chosen, "list", slugs)
        return self_service.update_preferences(session, sub, picked, name, organisation,
                                              ip=web.ip(request), user_agent=web.user_agent(request))



@router.get("/preferences/{token}/export.json")
def export(request: Request, token: str) -> Response:
    """Everything held about the person, as a JSON download."""
    web = web_of(request)
    with web.session() as session:
        data = self_service.export_data(session, self_service.subscriber_for(session, web.links, token))
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="bulletin-my-data.json"'})


@router.post("/preferences/{token}/erase")
async def erase(request: Request, token: str) -> Response:
    """Right to erasure; the page's checkbox guards against a slip of the finger."""
    web = web_of(request)
    form = await read_form(request, web.options.max_body)
    check_csrf(web.settings.secret_keys, request, form)
    if form.get("confirm") != "yes":
        raise FormRejected("tick the box to confirm that you want everything erased", field="confirm")
    await run_in_threadpool(_erase, web, request, token)
    return web.render(request, "message.html", {
        "title": "Your data has been erased",
        "message": "We no longer hold your name, organisation or address, and you will receive no more bulletins.",
    })


def _erase(web: WebContext, request: Request, token: str) -> None:
    with web.session() as session:
        sub = self_service.subscriber_for(session, web.links, token)
        self_service.erase_me(session, sub, ip=web.ip(request), user_agent=web.user_agent(request))
        remove_copies(web.settings, session, int(sub.id or 0))
    forget_old_pages(web.engine)
