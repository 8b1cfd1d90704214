"""Admin pages: staff accounts (add, role, disable) and the audit log."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.accounts import (
    ROLES,
    add_account,
    disable_account,
    list_accounts,
    list_audit,
    set_role,
)
from bulletin.web.console.auth import authorised, back, page, posted
from bulletin.web.context import web_of
from bulletin.web.security import text_field

router = APIRouter()


@router.get("/admin/staff")
def accounts(request: Request) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "admin")
        rows = list_accounts(session)
    return page(request, "admin/staff.html", me, {"rows": rows, "roles": ROLES})


@router.post("/admin/staff")
async def add(request: Request) -> Response:
    me, form = await posted(request, "admin")
    email, role = text_field(form, "email", required=True), text_field(form, "role", required=True)
    password = form.get("password")
    web = web_of(request)

    def run() -> None:
        with web.session() as session:
            add_account(session, email, role, password if isinstance(password, str) else "", actor=me.actor)

    await run_in_threadpool(run)
    return back("/admin/staff", "account-added")


@router.post("/admin/staff/{action}")
async def change(request: Request, action: str) -> Response:
    me, form = await posted(request, "admin")
    if action not in ("role", "disable"):
        return page(request, "admin/notice.html", me, {"title": "Not found", "message": "No such action."}, 404)
    email = text_field(form, "email", required=True)
    role = text_field(form, "role")
    web = web_of(request)

    def run() -> None:
        with web.session() as session:
            if action == "role":
                set_role(session, email, role, actor=me.actor)
            else:
                disable_account(session, email, actor=me.actor)

    await run_in_threadpool(run)
    return back("/admin/staff", "role-changed" if action == "role" else "account-disabled")


@router.get("/admin/audit")
def audit(request: Request, page_no: int = 1) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "admin")
        found = list_audit(session, page=page_no, per_page=50)
    return page(request, "admin/audit.html", me,
                {"rows": found.rows, "total": found.total, "page_no": found.page, "pages": found.pages})
