"""`bulletin feedback`: read, triage, export and answer what subscribers wrote back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from bulletin.cli.common import console, ctx_of

if TYPE_CHECKING:
    from bulletin.inbound import FeedbackView

app = typer.Typer(help="Replies from subscribers, matched to issue and block.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
IdArg = Annotated[int, typer.Argument(help="Feedback id (see `bulletin feedback list`).")]


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    issue: Annotated[str | None, typer.Option(help="Only replies to this issue (slug).")] = None,
    status: Annotated[str | None, typer.Option(help="new, read, answered or archived.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only replies with this tag.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List feedback, oldest first."""
    from bulletin.inbound import list_feedback

    c = ctx_of(ctx)
    with c.ws.session() as session:
        views = list_feedback(session, issue=issue, status=status, tag=tag)
    if as_json:
        typer.echo(json.dumps([v.as_dict() for v in views], ensure_ascii=False))
        return
    wide = console.width >= 140
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True, min_width=3)
    table.add_column("status", no_wrap=True, min_width=8)
    table.add_column("from", overflow="ellipsis", no_wrap=True, max_width=30 if wide else 18)
    if wide:
        table.add_column("issue", overflow="ellipsis", no_wrap=True, max_width=24)
    table.add_column("block", overflow="ellipsis", no_wrap=True, max_width=24 if wide else 12)
    table.add_column("reply", overflow="ellipsis", no_wrap=True, max_width=60 if wide else 30)
    for v in views:
        snippet = " ".join(v.visible_text.split())[:120]
        tags = "".join(f"#{t} " for t in v.tags)
        cells = [str(v.id), v.status, v.email] + ([v.issue] if wide else []) + [v.block, tags + snippet]
        table.add_row(*(Text(c) for c in cells))  # subscriber text is never rich markup
    console.print(table)


@app.command()
def show(ctx: typer.Context, feedback_id: IdArg, as_json: JsonOpt = False,
         full: Annotated[bool, typer.Option("--full", help="Also print the full text with quotes.")] = False) -> None:
    """Show one reply."""
    from bulletin.inbound import show_feedback

    c = ctx_of(ctx)
    with c.ws.session() as session:
        view = show_feedback(session, feedback_id)
    if as_json:
        typer.echo(json.dumps(view.as_dict(), ensure_ascii=False))
        return
    _print_view(view, full)


def _print_view(v: FeedbackView, full: bool) -> None:
    console.print(f"#{v.id} {v.status}  {v.received_at}  {v.name} <{v.email}>", highlight=False, markup=False)
    console.print(f"issue: {v.issue or '-'}  block: {v.block or '-'}  tags: {', '.join(v.tags) or '-'}",
                  highlight=False, markup=False)
    console.print(f"subject: {v.subject}", highlight=False, markup=False)
    for att in v.attachments:
        console.print(f"attachment: {att.get('filename')} ({att.get('content_type')}, {att.get('size')} bytes)",
                      highlight=False, markup=False)
    console.print()
    console.print(v.full_text if full else v.visible_text, highlight=False, markup=False)


@app.command()
def mark(
    ctx: typer.Context,
    feedback_id: IdArg,
    status: Annotated[str | None, typer.Option(help="new, read, answered or archived.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Add a tag (repeatable).")] = None,
    untag: Annotated[list[str] | None, typer.Option("--untag", help="Remove a tag (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the status and tags of a reply."""
    from bulletin.inbound import mark_feedback

    c = ctx_of(ctx)
    with c.ws.session() as session:
        view = mark_feedback(session, feedback_id, status=status, add_tags=tag, remove_tags=untag)
    if as_json:
        typer.echo(json.dumps(view.as_dict(), ensure_ascii=False))
    else:
        console.print(f"#{view.id}: {view.status} {', '.join(view.tags)}", highlight=False, markup=False)


@app.command()
def export(
    ctx: typer.Context,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write CSV to this file ('-' for stdout).")] = None,
    issue: Annotated[str | None, typer.Option(help="Only replies to this issue (slug).")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """Export feedback as CSV for a spreadsheet."""
    from bulletin.inbound import export_csv, list_feedback

    c = ctx_of(ctx)
    with c.ws.session() as session:
        data = export_csv(list_feedback(session, issue=issue, status=status))
    if csv_out is None or str(csv_out) == "-":
        sys.stdout.write(data)
    else:
        csv_out.write_text(data, encoding="utf-8")
        console.print(f"wrote {csv_out}")


@app.command()
def reply(
    ctx: typer.Context,
    feedback_id: IdArg,
    text: Annotated[str | None, typer.Option("--text", help="The answer (default: read from stdin).")] = None,
    from_addr: Annotated[str | None, typer.Option("--from", help="From address of the answer (default: the From of the list they had the issue through).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer the person by email, threaded under their reply (In-Reply-To), and mark it answered.

    The answer is queued with the mark and sent once that has committed (with any other notice
    due), so it goes at most once; a feedback already answered is refused.
    """
    from bulletin.audience import notices
    from bulletin.audience.links import Links
    from bulletin.inbound import answer_feedback, show_feedback

    c = ctx_of(ctx)
    body = text if text is not None else sys.stdin.read()
    with c.ws.session() as session:
        answer_feedback(session, feedback_id, body, from_addr=from_addr, links=Links.for_settings(c.settings))
    notices.send_due(c.engine, c.settings)
    with c.ws.session() as session:
        view = show_feedback(session, feedback_id)
    if as_json:
        typer.echo(json.dumps(view.as_dict(), ensure_ascii=False))
    else:
        console.print(f"#{view.id}: answered {view.email} (answer {view.answer_state})", highlight=False,
                      markup=False)
