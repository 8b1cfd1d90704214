"""`bulletin inbound`: feed mail in (stdin, Maildir, mbox, IMAP), listen for LMTP, reprocess, and show
what was not matched or not trusted.

Postfix, pipe (master.cf):
  bulletin unix - n n - - pipe flags=Rq user=bulletin argv=/usr/local/bin/bulletin -w /srv/bulletin inbound
    --envelope-from ${sender} --envelope-to ${original_recipient}
With several recipients Postfix repeats the last argument (`--envelope-to a b`): extra addresses after
--envelope-to are taken as more recipients. In that pipe mode every usage or configuration problem exits
75 (EX_TEMPFAIL) with the reason on stderr, so the MTA keeps the message and retries instead of bouncing it.
Postfix, LMTP (main.cf, with `bulletin inbound serve --port 2424` running):
  transport_maps = inline:{ news.example.org = lmtp:inet:127.0.0.1:2424 }
"""

from __future__ import annotations

import getpass
import json
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from bulletin.cli.common import console, ctx_of, err_console
from bulletin.statuses import ReviewClass

if TYPE_CHECKING:
    from bulletin.inbound import IngestResult

EX_TEMPFAIL = 75
_SOURCE_OPTIONS = ("--maildir", "--mbox", "--imap")
# Typer may bundle its own copy of Click: take its UsageError from the class it raises.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class InboundGroup(TyperGroup):
    """`bulletin inbound` as an MTA pipe: several envelope recipients, and never a permanent failure."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        args = _more_recipients(args, set(self.commands))
        if not _pipe_mode(args, set(self.commands)):
            return super().parse_args(ctx, args)
        try:
            return super().parse_args(ctx, args)
        except _UsageError as exc:
            _tempfail(f"usage: {exc.format_message()}")
            raise  # not reached


def _more_recipients(args: list[str], commands: set[str]) -> list[str]:
    """`--envelope-to a b c` (Postfix expanding ${original_recipient}) -> `--envelope-to a --envelope-to b ...`."""
    out: list[str] = []
    expect_value = recipients = False
    for arg in args:
        if expect_value:
            expect_value, recipients = False, True
        elif arg == "--envelope-to":
            expect_value = True
        elif arg.startswith("--envelope-to="):
            recipients = True
        elif recipients and "@" in arg and not arg.startswith("-") and arg not in commands:
            out.append("--envelope-to")
        else:
            recipients = False
        out.append(arg)
    return out


def _pipe_mode(args: list[str], commands: set[str]) -> bool:
    """A message on stdin from an MTA: no subcommand, no --maildir/--mbox/--imap, no --help."""
    if any(a in commands for a in args):
        return False
    return not any(a.split("=")[0] in (*_SOURCE_OPTIONS, "--help") for a in args)


def _tempfail(why: str) -> None:
    """Tell the MTA to keep the message and retry (exit 75), and say why on stderr and in the log."""
    from bulletin.logs import log_event

    err_console.print(f"[bold red]error:[/] message not stored, try again later: {escape(why)}", highlight=False,
                      soft_wrap=True)
    log_event("bulletin.inbound", "inbound.tempfail", reason=why, level=logging.WARNING)
    raise typer.Exit(EX_TEMPFAIL)


app = typer.Typer(
    cls=InboundGroup,
    help="Take in replies, bounces and complaints: one message on stdin (an MTA pipe), or --maildir, --mbox, "
         "--imap; `serve` listens for LMTP. Raw mail is stored before anything else.",
    epilog="Postfix pipe and LMTP lines: bulletin/inbound/README.md",
    invoke_without_command=True, rich_markup_mode="rich")

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON line per message.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


@app.callback()
def inbound(
    ctx: typer.Context,
    maildir: Annotated[Path | None, typer.Option(help="Read a Maildir (new/, unseen cur/); moves done mail to cur/.")] = None,
    mbox: Annotated[Path | None, typer.Option(help="Read every message of an mbox file.")] = None,
    imap: Annotated[bool, typer.Option("--imap", help="Poll the IMAP folder from the settings; moves done mail.")] = False,
    every: Annotated[float, typer.Option(help="With --imap: poll again every N seconds until Ctrl-C (0 = once).",
                                         min=0)] = 0,
    envelope_from: Annotated[str | None, typer.Option(help="Envelope sender (from the MTA pipe).")] = None,
    envelope_to: Annotated[list[str] | None, typer.Option(help="Envelope recipient (from the MTA pipe).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Read one message from stdin (an MTA pipe), or a --maildir, --mbox or --imap folder."""
    if ctx.invoked_subcommand is not None:
        return
    from bulletin.inbound import imap_poll, ingest, ingest_items, maildir_items, mbox_items

    c = ctx_of(ctx)
    if sum(bool(x) for x in (maildir, mbox, imap)) > 1:
        raise typer.BadParameter("choose one of --maildir, --mbox, --imap")
    if imap:
        _report(imap_poll(c.engine, c.settings), as_json, quiet)
        while every:
            time.sleep(every)
            _report(imap_poll(c.engine, c.settings), as_json, quiet)
        return
    if maildir or mbox:
        items = maildir_items(maildir) if maildir else mbox_items(mbox)  # type: ignore[arg-type]
        source = "maildir" if maildir else "mbox"
        _report((r for _, r in ingest_items(c.engine, c.settings, items, source=source)), as_json, quiet)
        return
    if sys.stdin.isatty():
        raise typer.BadParameter("pipe one message in, or use --maildir, --mbox or --imap (see --help)")
    data = sys.stdin.buffer.read()
    if not data.strip():
        _tempfail("no message on stdin")
    try:
        engine, settings = c.engine, c.settings
    except Exception as exc:  # noqa: BLE001 - a workspace or configuration problem: the MTA must keep the mail
        _tempfail(f"workspace: {exc}")
    try:
        result = ingest(engine, settings, data, source="stdin", envelope_from=envelope_from,
                        envelope_to=envelope_to)
    except Exception as exc:  # noqa: BLE001 - not stored: tell the MTA to keep the message and retry
        _tempfail(str(exc))
    _report([result], as_json, quiet)


def _report(results: Iterable[IngestResult], as_json: bool, quiet: bool) -> None:
    counts: dict[str, int] = {}
    for result in results:
        key = "duplicate" if result.duplicate else (result.classification or result.status)
        counts[key] = counts.get(key, 0) + 1
        if as_json:
            typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
        elif not quiet:
            who = result.subscriber or "-"
            console.print(f"#{result.inbound_id} {escape(result.message_id)} [bold]{key}[/] {escape(who)} "
                          f"{escape(result.issue or '')}", highlight=False, soft_wrap=True)
    if not as_json and not quiet:
        console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no messages")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 2424,
    smtp: Annotated[bool, typer.Option("--smtp", help="Speak SMTP instead of LMTP.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Listen for LMTP (or SMTP) from the MTA; each message is stored before the 250."""
    from bulletin.inbound import start_listener

    c = ctx_of(ctx)

    def show(result: IngestResult) -> None:
        _report([result], as_json, False) if as_json else console.print(
            f"#{result.inbound_id} {result.classification} {result.subscriber or '-'}", highlight=False, markup=False)

    controller = start_listener(c.engine, c.settings, host=host, port=port, lmtp=not smtp, on_result=show)
    err_console.print(f"listening on {host}:{port} ({'SMTP' if smtp else 'LMTP'}); Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@app.command("reprocess")
def reprocess_cmd(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only messages with this status (stored, processed, quarantined).")] = None,
    classification: Annotated[str | None, typer.Option("--class", help="Only messages of this class.")] = None,
    ids: Annotated[list[int] | None, typer.Argument(help="Inbound message ids (default: all).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Classify and match stored raw mail again, e.g. after a fix; feedback status and tags are kept."""
    from bulletin.inbound import reprocess

    c = ctx_of(ctx)
    _report(reprocess(c.engine, c.settings, status=status, classification=classification, ids=ids),
            as_json, quiet)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--class", help=f"Only {', '.join(ReviewClass.ALL)} mail.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Stored inbound mail, newest first: what was not matched (a question to the list address), not trusted, or quarantined."""
    from bulletin.inbound import list_inbound

    c = ctx_of(ctx)
    with c.ws.session() as session:
        rows = list_inbound(session, kind=kind, limit=limit)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.as_dict(), ensure_ascii=False))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("id", "received", "class", "from", "to list", "subject", "why")
    for r in rows:
        cls = r.classification + ("" if r.verified is None else " (verified)" if r.verified else " (unverified)")
        table.add_row(*(Text(x) for x in (str(r.id), r.received_at, cls or r.status, r.sender, r.to_list, r.subject,
                                          r.why)))
    console.print(table)


@app.command("show")
def show_cmd(ctx: typer.Context, inbound_id: Annotated[int, typer.Argument(help="Inbound message id.")],
             as_json: JsonOpt = False) -> None:
    """One stored message: headers, visible text, evidence, and why it was not matched or not trusted."""
    from bulletin.inbound import show_inbound

    c = ctx_of(ctx)
    with c.ws.session() as session:
        detail = show_inbound(session, c.ws.links, inbound_id)
    if as_json:
        typer.echo(json.dumps(detail.as_dict(), ensure_ascii=False))
        return
    s = detail.summary
    for line in (f"#{s.id} {s.status} {s.classification}  {s.received_at}  {s.message_id}",
                 f"envelope: from {detail.envelope_from or '-'} to {detail.envelope_to or '-'}",
                 f"why: {s.why or '-'}", ""):
        console.print(line, highlight=False, markup=False)
    for name, value in detail.headers:
        console.print(f"{name}: {value}", highlight=False, markup=False, soft_wrap=True)
    for ev in detail.evidence:
        console.print(f"evidence: {ev['kind']} {ev['address']} {'permanent' if ev['permanent'] else 'temporary'} "
                      f"{'verified' if ev['verified'] else 'unverified'} ({ev['auth']})", highlight=False, markup=False)
    console.print()
    console.print(detail.visible_text, highlight=False, markup=False)


@app.command("attach")
def attach_cmd(
    ctx: typer.Context,
    inbound_id: Annotated[int, typer.Argument(help="Inbound message id (from `inbound list --class unmatched`).")],
    subscriber: Annotated[str, typer.Option(help="The subscriber this message is from: address or #id.")],
    issue: Annotated[str | None, typer.Option(help="The issue (slug) it answers; default: the one its subject names.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn an unmatched human message into feedback from a subscriber, by hand."""
    from bulletin.inbound import attach_inbound

    c = ctx_of(ctx)
    with c.ws.session() as session:
        view = attach_inbound(session, inbound_id, subscriber=subscriber, issue=issue, actor=_actor())
    if as_json:
        typer.echo(json.dumps(view.as_dict(), ensure_ascii=False))
        return
    console.print(f"inbound #{inbound_id} is now feedback #{view.id} from {view.email}", highlight=False, markup=False)


def _actor() -> str:
    """Who attached it, for the feedback's `attached_by` and the audit log: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "cli"


__all__ = ["app"]
