"""Editor pages: the feedback inbox (by issue and block; mark, tag, answer) and unmatched mail (attach: staff)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.accounts import record_audit
from bulletin.db import page_bounds
from bulletin.errors import StateError
from bulletin.inbound import (
    answer_feedback,
    attach_inbound,
    list_feedback,
    list_unmatched,
    mark_feedback,
    show_feedback,
)
from bulletin.report import all_issue_slugs
from bulletin.statuses import FeedbackStatus
from bulletin.web.console.auth import authorised, back, page, posted
from bulletin.web.context import web_of
from bulletin.web.security import RowId, text_field

router = APIRouter()
PER_PAGE = 50
MAX_ANSWER = 20_000


@router.get("/admin/feedback")
def inbox(request: Request, issue: str = "", block: str = "", status: str = "", page_no: int = 1) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "editor")
        views = list_feedback(session, issue=issue or None, status=status or None)
        slugs = all_issue_slugs(session)
    blocks = sorted({v.block for v in views if v.block})
    if block:
        views = [v for v in views if v.block == block]
    views.reverse()  # newest first
    page_no, pages = page_bounds(len(views), page_no, PER_PAGE)
    shown = views[(page_no - 1) * PER_PAGE: page_no * PER_PAGE]
    return page(request, "admin/feedback.html", me, {
        "views": shown, "total": len(views), "issue": issue, "block": block, "status": status, "slugs": slugs,
        "blocks": blocks, "statuses": FeedbackStatus.ALL, "page_no": page_no, "pages": pages})


@router.get("/admin/feedback/{feedback_id}")
def one(request: Request, feedback_id: RowId) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "editor")
        view = show_feedback(session, feedback_id)
    return page(request, "admin/feedback_one.html", me,
                {"fb": view, "statuses": FeedbackStatus.ALL})


@router.post("/admin/feedback/{feedback_id}/mark")
async def mark(request: Request, feedback_id: RowId) -> Response:
    me, form = await posted(request, "editor")
    status = text_field(form, "status") or None
    add = [t for t in text_field(form, "add_tags").split(",") if t.strip()]
    remove = [t for t in text_field(form, "remove_tags").split(",") if t.strip()]
    web = web_of(request)

    def run() -> None:
        with web.session() as session:
            mark_feedback(session, feedback_id, status=status, add_tags=add, remove_tags=remove)
            record_audit(session, me.actor, "feedback.mark", f"feedback #{feedback_id}")

    await run_in_threadpool(run)
    return back(f"/admin/feedback/{feedback_id}", "feedback-saved")


@router.post("/admin/feedback/{feedback_id}/answer")
async def answer(request: Request, feedback_id: RowId) -> Response:
    me, form = await posted(request, "editor")
    text = form.get("answer")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_ANSWER:
        raise StateError(f"write an answer of at most {MAX_ANSWER} characters", where="field 'answer'")
    web = web_of(request)

    def run() -> None:
        with web.session() as session:  # the answer is queued here and sent only after this commits
            answer_feedback(session, feedback_id, text.replace("\r\n", "\n"), links=web.links)
            record_audit(session, me.actor, "feedback.answer", f"feedback #{feedback_id}")

    await run_in_threadpool(run)
    web.wake_sender()  # the in-app notice sender mails it now
    return back(f"/admin/feedback/{feedback_id}", "answer-queued")


@router.get("/admin/inbound")
def unmatched(request: Request, page_no: int = 1) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "editor")
        found = list_unmatched(session, page=page_no, per_page=PER_PAGE)
    return page(request, "admin/inbound.html", me,
                {"rows": found.rows, "total": found.total, "page_no": found.page, "pages": found.pages})


@router.post("/admin/inbound/{inbound_id}/attach")
async def attach(request: Request, inbound_id: RowId) -> Response:
    """Staff only: attaching looks anyone up by address or #id and shows their name and address on the
    feedback it makes, which would let an editor read the subscriber list one person at a time."""
    me, form = await posted(request, "staff")
    who = text_field(form, "subscriber", required=True)
    web = web_of(request)

    def run() -> int:
        with web.session() as session:
            return attach_inbound(session, inbound_id, subscriber=who, actor=me.actor).id

    feedback_id = await run_in_threadpool(run)
    return back(f"/admin/feedback/{feedback_id}", "attached")
