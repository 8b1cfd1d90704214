"""Commands of the send group: send, status, pause, resume, cancel, worker.

Each parses options, calls one function of `bulletin.delivery.service` and
prints. SIGTERM and Ctrl-C set a stop flag: messages in flight finish, the rest
stay queued for `bulletin resume`.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bulletin.cli.common import console, ctx_of, err_console
from bulletin.errors import DeliveryError

if TYPE_CHECKING:
    from bulletin.delivery import SendOptions, Tally

ISSUE = Annotated[str, typer.Argument(help="Issue slug (folder under content/) or path to an issue folder.")]
QUIET = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
RETRY = Annotated[float, typer.Option("--retry-after", help="Seconds before the first retry of a 4xx (doubles).")]
LINGER = Annotated[float, typer.Option("--wait", help="Seconds to stay for retries of deferred messages.")]
PROCESSES = Annotated[int | None, typer.Option("--processes", "-p", min=1, max=32,
                                               help="Sending processes sharing the connections (default: setting send_processes).")]


def _stop_on_signals():  # type: ignore[no-untyped-def]
    """SIGTERM / SIGINT ask the engine to stop after the messages in flight."""
    from bulletin.signals import stopping_on_signals

    return stopping_on_signals(lambda: err_console.print(
        "stopping after the messages in flight; `bulletin resume` continues"))


def _progress_bar(quiet: bool):  # type: ignore[no-untyped-def]
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total} sent"),
        TextColumn("deferred {task.fields[deferred]} failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]:.0f}/s"), TimeRemainingColumn(),
        console=err_console, disable=quiet, transient=False,
    )
    return progress


def _doing(t: Tally) -> str:
    """The bar's label: a send waiting for rows another process holds says so, and where to look."""
    if t.held_elsewhere:
        return f"waiting for {t.held_elsewhere} row(s) another process holds (log: send.waiting)"
    return "sending"


def _run(ctx: typer.Context, send_ids: list[int], quiet: bool, options: SendOptions,
         processes: int | None = None) -> Tally:
    from bulletin.delivery import service

    c = ctx_of(ctx)
    with _stop_on_signals() as stop, _progress_bar(quiet) as bar:
        task = bar.add_task("sending", total=None, deferred=0, failed=0, rate=0.0)

        def update(t: Tally) -> None:
            bar.update(task, total=t.total, completed=t.sent, deferred=t.deferred, failed=t.failed, rate=t.rate,
                       description=_doing(t))

        tally = service.send_queued(c.engine, c.settings, send_ids, options=options, stop=stop, progress=update,
                                    processes=processes or c.settings.send_processes)
        update(tally)
    paused = service.paused_reasons(c.engine, send_ids)
    if paused:
        # The circuit breaker: the relay refused us; nothing was bounced, every unsent row stays queued.
        raise DeliveryError(f"paused: {paused[0]}; fix the relay settings, then `bulletin resume`")
    if stop.is_set():
        console.print(f"stopped: {tally.sent} sent; run `bulletin resume` to send the rest")
    if tally.unknown:
        console.print(f"{tally.unknown} message(s) of unknown fate (connection lost after the final dot); "
                      "`bulletin resume --resend-unknown` sends them again")
    return tally


def parse_at(value: str, zone: tzinfo) -> datetime:
    """`--at` as UTC; a time without an offset is wall-clock time in the workspace's zone."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise DeliveryError(f"--at {value!r}: use ISO 8601, e.g. 2026-05-01T09:00 or 2026-05-01T09:00+01:00") from None
    return (at if at.tzinfo else at.replace(tzinfo=zone)).astimezone(UTC)


def send(
    ctx: typer.Context,
    issue: ISSUE,
    list_slug: Annotated[str | None, typer.Option("--list", "-l", help="Slug of the list to send to.")] = None,
    segment: Annotated[list[str] | None, typer.Option("--segment", help="Send to this segment of segments.toml (repeatable; default: the issue's `segments`).")] = None,
    test: Annotated[list[str] | None, typer.Option("--test", help="Send a [TEST] proof to this address (repeatable); not recorded.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print counts and the first message; send nothing.")] = False,
    at: Annotated[str | None, typer.Option("--at", help="Schedule for `bulletin worker` at this ISO time.")] = None,
    queue_only: Annotated[bool, typer.Option("--queue-only", help="Queue for `bulletin worker`; do not send here.")] = False,
    retry_after: RETRY = 60.0,
    wait: LINGER = 0.0,
    processes: PROCESSES = None,
    quiet: QUIET = False,
    force_list: Annotated[bool, typer.Option("--force-list", help="Send to a list the issue's `lists` does not name.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Send although the From domain fails SPF/DKIM/DMARC alignment.")] = False,
) -> None:
    """Send an issue to every confirmed subscriber of a list who has not had it.

    First the same checks as `bulletin check`, the issue's `lists`, and (over SMTP) the
    From domain's mail authentication: any error stops it before a row is queued.
    """
    from bulletin.delivery import SendOptions, preflight, service
    from bulletin.render.build import compile_issue
    from bulletin.report.export import shown_time

    c = ctx_of(ctx)
    compiled = compile_issue(c.settings, issue)
    targets = service.send_targets(c.settings, compiled, list_slug, segment)
    if not test:
        for slug, _segment in targets:
            preflight.require_listed(c.engine, compiled, slug, force_list=force_list)
        preflight.require_checks(compiled, issue)
    if not test and not dry_run:
        for slug in dict.fromkeys(slug for slug, _segment in targets):
            warning = preflight.require_mail_auth(c.settings, c.engine, slug, force=force)
            if warning:
                err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if test:
        for address, ok, detail in service.test_send(c.engine, c.settings, compiled, targets[0][0], list(test)):
            console.print(f"{'sent' if ok else '[red]not sent[/]'} proof to {address}: {detail}", highlight=False)
        return
    if dry_run:
        for slug, seg in targets:
            result = service.dry_run(c.engine, c.settings, compiled, slug, segment=seg)
            who = f"segment {seg.name} of {slug}" if seg else slug
            console.print(f"{who}: {result.recipients} recipients would get {compiled.slug}; "
                          f"{result.already} already had it")
            if result.first is not None:
                console.print(result.first.data.decode("utf-8", "replace"), markup=False, highlight=False)
        return
    send_ids: list[int] = []
    for slug, seg in targets:
        queued = service.queue_issue(c.engine, c.settings, compiled, slug, at=parse_at(at, c.settings.zone) if at else None,
                                     segment=seg)
        who = f"segment {seg.name} of {slug}" if seg else slug
        console.print(f"queued {queued.new_rows} new recipients of {who} ({queued.already} already had it)")
        if queued.send_id not in send_ids:
            send_ids.append(queued.send_id)
    if at or queue_only:
        when = f" at {shown_time(queued.scheduled_at, c.settings.zone)}" if at and queued.scheduled_at else ""
        console.print(f"`bulletin worker` will send it{when}", highlight=False)
        return
    _run(ctx, send_ids, quiet, SendOptions(retry_base=retry_after, linger=wait), processes)


def resume(ctx: typer.Context, issue: ISSUE, retry_after: RETRY = 60.0, wait: LINGER = 0.0,
           background: Annotated[bool, typer.Option("--background", help="Only mark it runnable for workers.")] = False,
           resend_unknown: Annotated[bool, typer.Option(
               "--resend-unknown",
               help="Also send again the messages whose connection broke after the final dot (same Message-ID).",
           )] = False,
           processes: PROCESSES = None, quiet: QUIET = False) -> None:
    """Continue a paused, stopped or crashed send: exactly the rows not yet sent."""
    from bulletin.delivery import SendOptions, service

    c = ctx_of(ctx)
    with c.ws.session() as session:
        ids = service.resume_issue(session, issue, resend_unknown=resend_unknown)
    if not ids:
        console.print("nothing to resume")
        return
    if background:
        console.print(f"{len(ids)} send(s) queued for workers")
        return
    _run(ctx, ids, quiet, SendOptions(retry_base=retry_after, linger=wait), processes)


def pause(ctx: typer.Context, issue: ISSUE) -> None:
    """Stop claiming new messages; running senders stop after their batch."""
    from bulletin.delivery import service

    with ctx_of(ctx).ws.session() as session:
        n = service.pause_issue(session, issue)
    console.print(f"paused {n} send(s)")


def cancel(ctx: typer.Context, issue: ISSUE) -> None:
    """Cancel: rows not yet sent will never be sent."""
    from bulletin.delivery import service

    with ctx_of(ctx).ws.session() as session:
        n = service.cancel_issue(session, issue)
    console.print(f"cancelled {n} unsent message(s)")


def status(ctx: typer.Context, issue: ISSUE,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Counts by state, the rate over the last minute, and the commonest errors."""
    # delivery.status, not service: a read need not load the send engine, messenger and render.
    # (`bulletin status` itself usually runs on the fast path, cli.quick; this is the full one.)
    from bulletin.cli.show import show_status
    from bulletin.delivery.status import issue_status

    c = ctx_of(ctx)
    with c.ws.session() as session:
        st = issue_status(session, issue)
    show_status(st, c.settings.zone, as_json=as_json)


def worker(ctx: typer.Context,
           once: Annotated[bool, typer.Option("--once", help="Exit when nothing is left to claim.")] = False,
           poll: Annotated[float, typer.Option("--poll", help="Seconds between looks for due sends.")] = 2.0,
           retry_after: RETRY = 60.0) -> None:
    """Send due and scheduled issues; run several (on several machines) against PostgreSQL."""
    from bulletin.delivery import SendOptions, service

    c = ctx_of(ctx)
    with _stop_on_signals() as stop:
        tally = service.run_worker(c.engine, c.settings, once=once, poll=poll, stop=stop,
                                   options=SendOptions(retry_base=retry_after))
    console.print(f"worker done: {tally.sent} sent, {tally.deferred} deferred, {tally.failed} failed")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    for fn in (send, status, pause, resume, cancel, worker):
        app.command(fn.__name__)(fn)
