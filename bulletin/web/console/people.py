"""Staff pages: subscribers (search, view, add, unsubscribe, suppress, erase), pending signups,
bounces and complaints, CSV import and export. Every change goes through audience's front door
with actor `staff:<email>` and leaves an audit entry naming the subscriber by id only."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from fastapi import APIRouter
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from bulletin.accounts import record_audit
from bulletin.audience import directory, exporter, importer, lists, staff
from bulletin.errors import StateError
from bulletin.forget import erase_everywhere
from bulletin.web.console.auth import authorised, back, page, posted, require
from bulletin.web.context import web_of
from bulletin.web.security import RowId, text_field

router = APIRouter()
SOURCE = "console"
MAX_CSV = 2 * 1024 * 1024


@router.get("/admin/subscribers")
def search(request: Request, q: str = "", page_no: int = 1) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "staff")
        found = directory.search_people(session, q[:200], page=page_no)
        all_lists = [m.slug for m in lists.all_lists(session)]
    return page(request, "admin/subscribers.html", me,
                {"q": q[:200], "found": found, "lists": all_lists})


@router.get("/admin/subscribers/{subscriber_id}")
def view(request: Request, subscriber_id: RowId) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "staff")
        person = directory.person(session, subscriber_id)
    return page(request, "admin/subscriber.html", me, {"person": person, "p": person.profile})


@router.post("/admin/subscribers")
async def add(request: Request) -> Response:
    me, form = await posted(request, "staff")
    email = text_field(form, "email", required=True)
    name, org = text_field(form, "name"), text_field(form, "organisation")
    slugs = [v for v in form.getlist("list") if isinstance(v, str) and v]
    web = web_of(request)

    def run() -> int:
        with web.session() as session:
            row = staff.add_subscriber(session, email, slugs, name=name, organisation=org, actor=me.actor,
                                       source=SOURCE)
            assert row.id is not None
            record_audit(session, me.actor, "subscriber.add", f"subscriber #{row.id} lists={','.join(slugs)}")
            return row.id

    sid = await run_in_threadpool(run)
    return back(f"/admin/subscribers/{sid}", "subscriber-added")


@router.post("/admin/subscribers/{subscriber_id}/{action}")
async def act(request: Request, subscriber_id: RowId, action: str) -> Response:
    role = "admin" if action == "erase" else "staff"
    me, form = await posted(request, role)
    if action not in ("unsubscribe", "suppress", "erase"):
        return page(request, "admin/notice.html", me, {"title": "Not found", "message": "No such action."}, 404)
    list_slug = text_field(form, "list") or None
    reason = text_field(form, "reason")
    web = web_of(request)
    who = f"#{subscriber_id}"

    def erase(session: Session) -> int:
        erased = staff.erase_address(session, who, actor=me.actor, source=SOURCE)
        record_audit(session, me.actor, "subscriber.erase", f"subscriber #{subscriber_id}")
        return erased

    def run() -> str:
        if action == "erase":
            erase_everywhere(web.engine, web.settings, erase)
            return "erased"
        with web.session() as session:
            if action == "unsubscribe":
                n = staff.unsubscribe_address(session, who, list_slug, actor=me.actor, source=SOURCE)
                note = "unsubscribed" if n else "unsubscribed-none"
                target = f"subscriber #{subscriber_id} list={list_slug or 'all'}"
            else:
                email = staff.resolve(session, who).email
                if not email:
                    raise StateError("an erased subscriber is already suppressed", where=f"subscriber {who}")
                staff.suppress_address(session, email, reason or "staff", actor=me.actor, source=SOURCE)
                note, target = "suppressed", f"subscriber #{subscriber_id}"
            record_audit(session, me.actor, f"subscriber.{action}", target)
        return note

    note = await run_in_threadpool(run)
    return back(f"/admin/subscribers/{subscriber_id}", note)


@router.get("/admin/pending")
def pending(request: Request, page_no: int = 1) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "staff")
        found = directory.pending_signups(session, page=page_no)
    return page(request, "admin/pending.html", me,
                {"rows": found.rows, "total": found.total, "page_no": found.page, "pages": found.pages})


@router.post("/admin/pending/{subscriber_id}/resend")
async def resend(request: Request, subscriber_id: RowId) -> Response:
    me, _form = await posted(request, "staff")
    web = web_of(request)

    def run() -> None:
        with web.session() as session:
            directory.resend_confirmation(session, web.links, subscriber_id)
            record_audit(session, me.actor, "signup.resend", f"subscriber #{subscriber_id}")

    await run_in_threadpool(run)
    web.wake_sender()  # the in-app notice sender mails it now
    return back("/admin/pending", "confirmation-queued")


@router.get("/admin/bounces")
def bounces(request: Request) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "staff")
        rows = directory.bounces_and_complaints(session)
    return page(request, "admin/bounces.html", me, {"rows": rows})


@router.get("/admin/import")
def import_page(request: Request) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "staff")
        all_lists = [m.slug for m in lists.all_lists(session)]
    return page(request, "admin/import.html", me, {"lists": all_lists, "report": None})


@router.post("/admin/import")
async def import_post(request: Request) -> Response:
    me, form = await posted(request, "staff", upload=MAX_CSV)
    upload = form.get("file")
    pasted = form.get("csv")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_CSV + 1)
    elif isinstance(pasted, str) and pasted.strip():
        data = pasted.encode()
    else:
        raise StateError("choose a CSV file or paste its rows", where="field 'csv'")
    if len(data) > MAX_CSV:
        raise StateError(f"the CSV is larger than {MAX_CSV // 1024} KiB", where="field 'csv'")
    slugs = [v for v in form.getlist("list") if isinstance(v, str) and v]
    web = web_of(request)

    def run() -> importer.ImportReport:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "console-import.csv"
            path.write_bytes(data)
            report = importer.import_csv(web.ws.engine, path, actor=me.actor, lists=slugs)
        with web.session() as session:
            record_audit(session, me.actor, "subscribers.import",
                         f"rows={report.rows} created={report.created} errors={len(report.errors)}")
            all_lists = [m.slug for m in lists.all_lists(session)]
        return report, all_lists  # type: ignore[return-value]

    report, all_lists = await run_in_threadpool(run)  # type: ignore[misc]
    return page(request, "admin/import.html", me, {"lists": all_lists, "report": report})


@router.get("/admin/export.csv")
def export_csv(request: Request, list_slug: str = "", state: str = "") -> Response:
    me = require(request, "staff")
    out = io.StringIO()
    with web_of(request).session() as session:
        n = exporter.export(session, out, fmt="csv", list_slug=list_slug or None, state=state or None)
        record_audit(session, me.actor, "subscribers.export", f"rows={n} list={list_slug or 'all'}")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'})
