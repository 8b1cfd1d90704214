"""`bulletin segments`: the segments of subscribers/segments.toml, and who is in them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, ctx_of

app = typer.Typer(help="Segments: named parts of a list chosen by a condition (subscribers/segments.toml).",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every segment with its list, condition and how many people it chooses now."""
    from bulletin.audience.segments import load_segments, segment_count, segments_file

    c = ctx_of(ctx)
    path = segments_file(c.settings.path(c.settings.subscribers_dir))
    segments = load_segments(path)
    with c.ws.session() as session:
        counts = {s.name: segment_count(session, s) for s in segments}
    if as_json:
        typer.echo(json.dumps([{"name": s.name, "description": s.description, "list": s.list,
                                "condition": s.condition.source, "count": counts[s.name]} for s in segments]))
        return
    if not segments:
        console.print(f"no segments: define them in {path}")
        return
    table = Table("segment", "list", "people", "condition", "description")
    for s in segments:
        table.add_row(s.name, s.list, str(counts[s.name]), s.condition.source, s.description)
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Segment name.")],
    sample: Annotated[int, typer.Option(min=0, max=1000, help="How many members to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """One segment: its condition, how many people it chooses and a sample of them."""
    from bulletin.audience.segments import (
        find_segment,
        load_segments,
        segment_count,
        segment_page,
        segments_file,
    )

    c = ctx_of(ctx)
    path = segments_file(c.settings.path(c.settings.subscribers_dir))
    segment = find_segment(load_segments(path), name, path)
    with c.ws.session() as session:
        count = segment_count(session, segment)
        rows = segment_page(session, segment, per_page=sample) if sample else []
    if as_json:
        typer.echo(json.dumps({"name": segment.name, "list": segment.list, "condition": segment.condition.source,
                               "count": count, "sample": [{"id": i, "email": e, "name": n, "organisation": o}
                                                          for i, e, n, o in rows]}))
        return
    console.print(f"[bold]{segment.name}[/] on {segment.list}: {segment.condition.source}", highlight=False)
    if segment.description:
        console.print(segment.description, highlight=False)
    console.print(f"{count} people")
    if rows:
        table = Table("id", "email", "name", "organisation", title=f"first {len(rows)}")
        for i, e, n, o in rows:
            table.add_row(str(i), e, n, o)
        console.print(table)
