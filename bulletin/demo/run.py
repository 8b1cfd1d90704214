"""`bulletin demo`: every stage once, on embedded defaults, in a fresh workspace.

It calls the same stage functions as the commands do (sync lists, import,
compile, send, ingest, report), so what the demo shows is what the tool does;
nothing here is demo-only except the mail it feeds back in (bulletin.demo.mail).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy.engine import Engine

from bulletin.audience.importer import ImportReport, import_csv
from bulletin.audience.lists import lists_file, load_lists, sync_lists
from bulletin.config import Settings, load_settings
from bulletin.db import make_engine, session_scope
from bulletin.defaults import SAMPLE_ISSUE, defaults_dir
from bulletin.delivery.engine import Tally
from bulletin.delivery.service import queue_issue, send_queued
from bulletin.demo import mail
from bulletin.errors import BulletinError
from bulletin.inbound import IngestResult, ingest
from bulletin.render.build import BuildResult, build_issue
from bulletin.report import IssueReport, issue_report

SAMPLE_LIST = "shared-services"
FEEDBACK_BLOCK = "we-want-to-hear-from-you"

Step = Callable[[str], None]


@dataclass
class DemoResult:
    workspace: Path
    settings: Settings
    imported: ImportReport
    build: BuildResult
    tally: Tally
    inbound: list[IngestResult] = field(default_factory=list)
    report: IssueReport | None = None

    @property
    def outbox(self) -> Path:
        return self.settings.outbox_path / "new"


def prepare_workspace(target: Path | None) -> Path:
    """A fresh folder with the sample content and subscriber files; refuses to reuse a used one."""
    ws = Path(tempfile.mkdtemp(prefix="bulletin-demo-")) if target is None else target.resolve()
    if (ws / ".bulletin").exists():
        raise BulletinError("already holds a bulletin database; give an empty or new folder", where=str(ws))
    ws.mkdir(parents=True, exist_ok=True)
    for name in ("content", "subscribers"):
        if not (ws / name).exists():
            shutil.copytree(defaults_dir(name), ws / name)
    return ws


def run_demo(target: Path | None = None, *, step: Step = lambda _s: None) -> DemoResult:
    ws = prepare_workspace(target)
    settings = load_settings(ws, transport="maildir")
    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    try:
        return _run(settings, engine, step)
    finally:
        engine.dispose()


def _run(settings: Settings, engine: Engine, step: Step) -> DemoResult:
    ws = settings.workspace
    step(f"workspace {ws} (SQLite at {settings.effective_database_url.removeprefix('sqlite:///')})")
    with session_scope(engine) as session:
        synced = sync_lists(session, load_lists(lists_file(settings.path(settings.subscribers_dir))))
    step(f"lists synced: {', '.join(synced.added)}")
    imported = import_csv(engine, settings.path(settings.subscribers_dir) / "sample.csv", actor="demo")
    step(f"subscribers imported: {imported.created} new, {len(imported.errors)} rejected rows")
    build = build_issue(settings, SAMPLE_ISSUE)
    step(f"issue built: {build.folder}")
    queued = queue_issue(engine, settings, build.compiled, SAMPLE_LIST)
    tally = send_queued(engine, settings, [queued.send_id])
    step(f"sent {tally.sent} messages to the Maildir outbox {settings.outbox_path}")
    result = DemoResult(ws, settings, imported, build, tally)
    result.inbound = _feed_back(settings, engine, result.outbox)
    for r in result.inbound:
        step(f"inbound {r.classification or r.status}: {r.subscriber or 'unmatched'}"
             + (f" (block {r.block})" if r.block else ""))
    with session_scope(engine) as session:
        result.report = issue_report(session, SAMPLE_ISSUE)
    return result


def _sent_messages(outbox: Path) -> list[bytes]:
    """Outbox messages in recipient order, so the demo picks the same people every run."""
    raws = [p.read_bytes() for p in outbox.iterdir() if p.is_file()]
    return sorted(raws, key=lambda raw: parseaddr(str(message_from_bytes(raw, policy=policy.default)["To"]))[1])


def _feed_back(settings: Settings, engine: Engine, outbox: Path) -> list[IngestResult]:
    """A reply to the feedback block, an out-of-office, a hard bounce and a complaint, through `ingest`."""
    sent = _sent_messages(outbox)
    if len(sent) < 4:
        raise BulletinError(f"expected at least 4 sent messages, found {len(sent)}", where=str(outbox))
    answer = ("We would value help finding partners for a shared legal service: "
              "is the match-making offer open to district councils?")
    results = [ingest(engine, settings, mail.reply_to_block(sent[0], FEEDBACK_BLOCK, answer), source="demo")]
    results.append(ingest(engine, settings, mail.out_of_office(sent[1]), source="demo"))
    raw, verp = mail.hard_bounce(sent[2])
    results.append(ingest(engine, settings, raw, source="demo", envelope_from="", envelope_to=verp))
    raw, verp = mail.complaint(sent[3])
    results.append(ingest(engine, settings, raw, source="demo", envelope_from="", envelope_to=verp))
    return results
