"""Editor pages: the dashboard, issues (status, report with chart, pause/resume/cancel)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulletin.accounts import record_audit
from bulletin.audience import lists
from bulletin.delivery import service
from bulletin.inbound import new_feedback_count
from bulletin.report import all_issue_slugs, chart_png, issue_report, recent_issues
from bulletin.statuses import SubscriptionState
from bulletin.web.console.auth import authorised, back, page, posted, require
from bulletin.web.context import web_of

router = APIRouter()
DONE = {"pause": "paused", "cancel": "cancelled", "resume": "resumed"}  # keys of console.done.MESSAGES


@router.get("/admin")
def dashboard(request: Request) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "editor")
        ctx = {"lists": lists.overview(session), "states": SubscriptionState.ALL,
               "issues": recent_issues(session, limit=5), "new_feedback": new_feedback_count(session)}
    return page(request, "admin/dashboard.html", me, ctx)


@router.get("/admin/issues")
def issues(request: Request) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "editor")
        slugs = all_issue_slugs(session)
    return page(request, "admin/issues.html", me, {"slugs": slugs})


@router.get("/admin/issues/{slug}")
def issue(request: Request, slug: str) -> Response:
    with web_of(request).session() as session:
        me = authorised(session, request, "editor")
        report = issue_report(session, slug)
        try:
            status = service.issue_status(session, slug)
        except Exception:  # noqa: BLE001 - an issue never sent has no sends yet: show the report alone
            status = None
    return page(request, "admin/issue.html", me, {"report": report, "status": status})


@router.get("/admin/issues/{slug}/chart.png")
def chart(request: Request, slug: str) -> Response:
    require(request, "editor")
    with web_of(request).session() as session:
        report = issue_report(session, slug)
    return Response(chart_png(report), media_type="image/png")


@router.post("/admin/issues/{slug}/{action}")
async def issue_action(request: Request, slug: str, action: str) -> Response:
    me, _form = await posted(request, "editor")
    web = web_of(request)
    if action not in ("pause", "resume", "cancel"):
        return page(request, "admin/notice.html", me, {"title": "Not found", "message": "No such action."}, 404)

    def run() -> str:
        with web.session() as session:
            if action == "pause":
                changed = service.pause_issue(session, slug)
            elif action == "cancel":
                changed = service.cancel_issue(session, slug)
            else:
                changed = len(service.resume_issue(session, slug))
            record_audit(session, me.actor, f"issue.{action}", f"issue {slug}")
        return DONE[action] + ("" if changed else "-none")

    return back(f"/admin/issues/{slug}", await run_in_threadpool(run))
