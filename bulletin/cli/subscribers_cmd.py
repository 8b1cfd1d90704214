"""`bulletin subscribers`: staff commands over the audience stage."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from bulletin.cli.common import console, ctx_of, err_console

if TYPE_CHECKING:
    from bulletin.audience.importer import ImportReport

app = typer.Typer(help="Subscribers: add, import, export, list, show, unsubscribe, suppress, erase.",
                  no_args_is_help=True)

ListOpt = Annotated[list[str] | None, typer.Option("--list", "-l", help="List slug (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _actor() -> str:
    """Who did it, for the consent log: the operating-system user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:
        return "cli"


@app.command()
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Address to add.")],
    lists: ListOpt = None,
    name: Annotated[str, typer.Option(help="Full name.")] = "",
    organisation: Annotated[str, typer.Option("--organisation", "--org", help="Organisation.")] = "",
    pending: Annotated[bool, typer.Option("--pending", help="Add as pending (needs confirmation) instead of confirmed.")] = False,
) -> None:
    """Add one person to one or more lists (confirmed unless --pending)."""
    from bulletin.audience import staff

    c = ctx_of(ctx)
    with c.ws.session() as session:
        sub = staff.add_subscriber(session, email, lists or [], name=name, organisation=organisation,
                                   confirmed=not pending, actor=_actor())
    console.print(f"{sub.email} (#{sub.id}) on {', '.join(lists or [])}: {'pending' if pending else 'confirmed'}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with columns email, name, organisation, lists (';'-separated); others become attributes.")],
    lists: ListOpt = None,
    pending: Annotated[bool, typer.Option("--pending", help="Import as pending instead of confirmed.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 5000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    as_json: JsonOpt = False,
    encoding: Annotated[str | None, typer.Option(
        "--encoding", help="The file's encoding (e.g. latin-1, cp1252); default: UTF-8, or UTF-16/UTF-8 by BOM.")] = None,
) -> None:
    """Import subscribers; bad rows are reported by line, people who opted out are never re-subscribed."""
    from bulletin.audience.importer import import_csv

    c = ctx_of(ctx)
    show_progress = not (quiet or as_json)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console,
                  disable=not show_progress, transient=True) as progress:
        task = progress.add_task(f"importing {file.name}")

        def on_batch(r: ImportReport) -> None:
            progress.update(task, description=f"importing {file.name}: {r.rows} rows")

        report = import_csv(c.engine, file, actor=_actor(), lists=lists, confirmed=not pending,
                            batch_size=batch_size, on_batch=on_batch, encoding=encoding)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        _print_import(report, quiet)
    if report.errors:
        raise typer.Exit(1)


def _print_import(report: ImportReport, quiet: bool) -> None:
    for e in report.errors:
        err_console.print(f"{report.file}:{e.line}: {e.address or ''}: {e.reason}", highlight=False)
    for e in report.refused:
        err_console.print(f"{report.file}:{e.line}: {e.address}: refused: {e.reason}", highlight=False)
    if not quiet or report.errors:
        console.print(
            f"{report.rows} rows: {report.created} new, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.subscriptions_added} subscriptions added, {report.merged} duplicates merged, "
            f"{len(report.refused)} refused, {len(report.errors)} bad rows")


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv (the import format) or json (one object per line).")] = "csv",
    list_slug: Annotated[str | None, typer.Option("--list", "-l", help="Only this list.")] = None,
    state: Annotated[str | None, typer.Option(help="Only subscriptions in this state (e.g. confirmed).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """Export subscribers as CSV or JSON, filtered by list and state."""
    from bulletin.audience.exporter import export as export_subscribers

    if fmt not in ("csv", "json"):
        raise typer.BadParameter("must be csv or json", param_hint="--format")
    c = ctx_of(ctx)
    with c.ws.session() as session:
        if output is None:
            n = export_subscribers(session, sys.stdout, fmt=fmt, list_slug=list_slug, state=state)  # type: ignore[arg-type]
        else:
            with output.open("w", newline="", encoding="utf-8") as fh:
                n = export_subscribers(session, fh, fmt=fmt, list_slug=list_slug, state=state)  # type: ignore[arg-type]
    if output is not None:
        console.print(f"{n} subscribers written to {output}")


@app.command("list")
def list_(
    ctx: typer.Context,
    list_slug: Annotated[str | None, typer.Option("--list", "-l", help="Only this list.")] = None,
    state: Annotated[str | None, typer.Option(help="Only this subscription state.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Substring of address, name or organisation.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=1000, help="Rows per page.")] = 50,
    segment: Annotated[str | None, typer.Option("--segment", help="Only the people of this segment (segments.toml).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List subscribers, filtered and paginated."""
    c = ctx_of(ctx)
    if segment is not None:
        _list_segment(c, segment, page, per_page, as_json)
        return
    from bulletin.audience import staff

    with c.ws.session() as session:
        result = staff.search(session, list_slug=list_slug, state=state, text=search, page=page, per_page=per_page)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    table = Table("id", "email", "name", "organisation", "lists", title=f"page {result.page}, {result.total} in all")
    for r in result.rows:
        lists = ", ".join(f"{k}:{v}" for k, v in r.lists.items()) + (" [red]suppressed[/]" if r.suppressed else "")
        table.add_row(str(r.id), r.email or "(erased)", r.name, r.organisation, lists)
    console.print(table)


def _list_segment(c, name: str, page: int, per_page: int, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from bulletin.audience.segments import (
        find_segment,
        load_segments,
        segment_count,
        segment_page,
        segments_file,
    )

    path = segments_file(c.settings.path(c.settings.subscribers_dir))
    seg = find_segment(load_segments(path), name, path)
    with c.ws.session() as session:
        total = segment_count(session, seg)
        rows = segment_page(session, seg, page=page, per_page=per_page)
    if as_json:
        console.print_json(json.dumps({"segment": seg.name, "list": seg.list, "total": total, "page": page,
                                       "rows": [{"id": i, "email": e, "name": n, "organisation": o}
                                                for i, e, n, o in rows]}))
        return
    table = Table("id", "email", "name", "organisation", title=f"segment {seg.name}: page {page}, {total} in all")
    for i, e, n, o in rows:
        table.add_row(str(i), e, n, o)
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Address, or #id for an erased person.")],
    as_json: JsonOpt = False,
    export: Annotated[bool, typer.Option("--export", help="Print the subject-access export (the same JSON "
                                                          "the person downloads from the preference centre).")] = False,
) -> None:
    """Everything held about one person, with the consent log."""
    from bulletin.audience import staff
    from bulletin.audience.access import subject_access

    c = ctx_of(ctx)
    with c.ws.session() as session:
        p = staff.profile(session, address)
        if export:
            console.print_json(json.dumps(subject_access(session, p.id)))
            return
    if as_json:
        console.print_json(json.dumps(p.to_dict()))
        return
    console.print(f"[bold]{p.email or '(erased)'}[/] #{p.id}  {p.name}  {p.organisation}", highlight=False)
    console.print(f"created {p.created_at:%Y-%m-%d %H:%M} UTC" + ("  [red]suppressed[/]" if p.suppressed else "")
                  + (f"  erased {p.erased_at:%Y-%m-%d}" if p.erased_at else ""))
    for k, v in p.attributes.items():
        console.print(f"  {k}: {v}", highlight=False)
    subs = Table("list", "state", "since", "confirmed")
    for s in p.subscriptions:
        subs.add_row(s["list"], s["state"], f"{s['since']:%Y-%m-%d %H:%M}",
                     f"{s['confirmed_at']:%Y-%m-%d %H:%M}" if s["confirmed_at"] else "")
    console.print(subs)
    log = Table("at (UTC)", "event", "list", "change", "source", "actor", "ip", "user agent", title="consent log")
    for e in p.events:
        change = f"{e.old_state or '-'} -> {e.new_state}" if e.new_state else ""
        log.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind, e.list or "", change, e.source, e.actor, e.ip or "",
                    e.user_agent or "")
    console.print(log)


@app.command()
def unsubscribe(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Address (or #id).")],
    list_slug: Annotated[str | None, typer.Option("--list", "-l", help="Only this list (default: all lists).")] = None,
) -> None:
    """Unsubscribe someone from one list or from all lists."""
    from bulletin.audience import staff

    c = ctx_of(ctx)
    with c.ws.session() as session:
        n = staff.unsubscribe_address(session, address, list_slug, actor=_actor())
    console.print(f"{address}: {n} subscription(s) unsubscribed" if n else f"{address}: nothing to unsubscribe")


@app.command()
def suppress(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Address to block from every list (need not be a subscriber).")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "staff",
) -> None:
    """Put an address on the blocklist: no list will mail it and no import will add it."""
    from bulletin.audience import staff

    c = ctx_of(ctx)
    with c.ws.session() as session:
        new = staff.suppress_address(session, address, reason, actor=_actor())
    console.print(f"{address}: suppressed" if new else f"{address}: already suppressed")


@app.command()
def erase(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Address (or #id) of the person to erase.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a person's data (right to erasure); a hash of the address stays as a suppression."""
    if not yes and not typer.confirm(f"Erase all personal data of {address}? This cannot be undone"):
        raise typer.Exit(1)
    from bulletin.audience import staff
    from bulletin.forget import erase_everywhere

    c = ctx_of(ctx)
    sid = erase_everywhere(c.engine, c.settings,
                           lambda session: staff.erase_address(session, address, actor=_actor()))
    console.print(f"#{sid} erased; the address stays suppressed (by hash)")
