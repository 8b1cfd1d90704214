"""Sending speed and memory: ours against Postfix's own load generator, same sink, same run.

    python bench/send.py                       # 20,000 x ~62 KB, 3 runs, SQLite and PostgreSQL
    python bench/send.py --runs 1 --big 0      # quicker
    python bench/send.py --database sqlite     # one ledger only

For each run a fresh ledger (SQLite file, or a PostgreSQL database copied from
a template) with N confirmed subscribers is queued and sent (queue + send, as
`bulletin send` does after rendering) with DEFAULT settings (4 SMTP connections,
`send_processes`: one process per 4 connections, at most one per core) to Postfix's smtp-sink; then
`smtp-source -d -s 4 -m N -l <our message size>` sends the same number and size
of messages to the same sink. Messages are the size of the sample issue (62 KB).
Prints medians,
the ratio ours / theirs, peak memory of the sending process, and the Maildir
outbox rate. Needs /usr/sbin/smtp-sink and /usr/sbin/smtp-source (package postfix;
the postfix daemon is not started). PostgreSQL: $BULLETIN_BENCH_PG; the databases
$BULLETIN_BENCH_DB_tpl and _run (default bulletin_bench_*) are dropped and re-created.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"


def compiled_issue(size: int):  # type: ignore[no-untyped-def]
    """A compiled issue whose filled message is about `size` bytes (text + HTML, quoted-printable)."""
    from bulletin.render.compiled import Compiled, Template, marker

    para = "Shared services news from the partner councils: payroll, HR, ICT and procurement. "
    reps = max(1, (size - 2500) // (len(para) * 2))  # headers and QP soft breaks take the rest
    body = para * reps
    html = (f"<!doctype html><html><body><p>Dear {marker('name')},</p><p>{body}</p>"
            f"<a href=\"{marker('unsubscribe_url')}\">Unsubscribe</a> <a href=\"{marker('preferences_url')}\">"
            f"Preferences</a> <a href=\"mailto:{marker('reply_address')}\">Reply</a> "
            f"<a href=\"{marker('view_online_url')}\">Online</a></body></html>")
    text = (f"Dear {marker('name')},\n\n{body}\n\nUnsubscribe: {marker('unsubscribe_url')}\n"
            f"Preferences: {marker('preferences_url')}\nReply: {marker('reply_address')}\n")
    return Compiled(slug="bench", title="Bench", subject="Bench issue", preheader="", issue_date="",
                    lists=("bench",), html=Template.split(html, escape=True),
                    text=Template.split(text, escape=False), web_html="")


PG_URL = os.environ.get("BULLETIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Another prefix lets two runs share a server (each drops and re-creates its own two databases).
DB = os.environ.get("BULLETIN_BENCH_DB", "bulletin_bench")
TPL, RUN = f"{DB}_tpl", f"{DB}_run"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


def _pg_db_url(name: str) -> str:
    base = PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


def prepare(folder: Path, n: int, database: str = "sqlite") -> Path:
    """A workspace whose ledger holds one list and n confirmed subscribers.

    On PostgreSQL the data goes into database `<BULLETIN_BENCH_DB>_tpl`, which each run copies.
    """
    from sqlalchemy import insert

    from bulletin.audience.addresses import hash_normalised
    from bulletin.config import load_settings
    from bulletin.db import make_engine, session_scope
    from bulletin.models import MailingList, Subscriber, Subscription, utcnow

    url = None
    if database == "postgresql":
        _pg_admin(f"DROP DATABASE IF EXISTS {TPL}")
        _pg_admin(f"CREATE DATABASE {TPL}")
        url = _pg_db_url(TPL)
    settings = load_settings(folder, sending_domain="news.example.org", public_base_url="https://news.example.org",
                             database_url=url)
    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    now = utcnow()
    with session_scope(engine) as session:
        session.add(MailingList(slug="bench", name="Bench", from_name="Bench Team", from_address="bench@example.org"))
    for start in range(0, n, 20000):
        stop = min(n, start + 20000)
        with session_scope(engine) as session:
            session.execute(insert(Subscriber), [
                {"id": i + 1, "email": f"r{i}@example.org", "email_hash": hash_normalised(f"r{i}@example.org"),
                 "name": f"Reader {i}", "organisation": "", "attributes": {}, "suppressed": False,
                 "created_at": now, "updated_at": now} for i in range(start, stop)])
            session.execute(insert(Subscription), [
                {"subscriber_id": i + 1, "list_id": 1, "state": "confirmed", "created_at": now,
                 "updated_at": now, "confirmed_at": now} for i in range(start, stop)])
    if database == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT setval('subscriber_id_seq', (SELECT max(id) FROM subscriber))")
            conn.commit()
    engine.dispose()
    return settings.state_dir / "bulletin.db"


def child(workspace: Path, size: int, transport: str, port: int, database_url: str | None = None) -> None:
    """Run in a fresh process: queue and send, report rate and memory as JSON."""
    from bulletin.config import load_settings
    from bulletin.db import make_engine
    from bulletin.delivery import service

    settings = load_settings(workspace, sending_domain="news.example.org", public_base_url="https://news.example.org",
                             transport=transport, smtp_port=port, database_url=database_url,
                             smtp_connections=int(os.environ.get("BENCH_CONNECTIONS", "4")))
    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    compiled = compiled_issue(size)
    if os.environ.get("BENCH_SWITCH"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH"]))
    rss_before = _status("VmRSS")
    _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    queued = service.queue_issue(engine, settings, compiled, "bench")
    t1 = time.perf_counter()
    processes = int(os.environ.get("BENCH_PROCESSES") or settings.send_processes)  # default: the setting's
    tally = service.send_queued(engine, settings, [queued.send_id], processes=processes)
    t2 = time.perf_counter()
    print(json.dumps({"sent": tally.sent, "processes": processes, "queue_s": t1 - t0, "send_s": t2 - t1, "total_s": t2 - t0, "cpu_s": time.process_time() - c0,
                      "rss_before_mb": rss_before / 1024, "peak_mb": _status("VmHWM") / 1024}))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ours(template_db: Path, folder: Path, size: int, transport: str, port: int,
             database: str = "sqlite") -> dict[str, float]:
    ws = Path(tempfile.mkdtemp(dir=folder))
    (ws / ".bulletin").mkdir()
    extra = []
    if database == "postgresql":
        _pg_admin(f"DROP DATABASE IF EXISTS {RUN}")
        _pg_admin(f"CREATE DATABASE {RUN} TEMPLATE {TPL}")
        extra = ["--database-url", _pg_db_url(RUN)]
    else:
        shutil.copy(template_db, ws / ".bulletin" / "bulletin.db")
    shutil.copy(template_db.parent / "secret_keys.json", ws / ".bulletin" / "secret_keys.json")
    out = subprocess.run([sys.executable, __file__, "--child", str(ws), "--size", str(size),
                          "--transport", transport, "--port", str(port), *extra],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if transport == "maildir":
        result["files"] = len(list((ws / ".bulletin" / "outbox" / "new").iterdir()))
    shutil.rmtree(ws)
    return result


def run_theirs(n: int, port: int, length: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([SOURCE, "-d", "-s", "4", "-m", str(n), "-l", str(length), f"127.0.0.1:{port}"], check=True,
                   capture_output=True)
    return n / (time.perf_counter() - t0)


def start_sink(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{port}", "256"])
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.01)
    raise SystemExit("smtp-sink did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipients", type=int, default=20000)
    ap.add_argument("--size", type=int, default=62000, help="approximate message size in bytes (sample issue: 62 KB)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both",
                    help=f"ledger(s) to measure; PostgreSQL at $BULLETIN_BENCH_PG (default {PG_URL})")
    ap.add_argument("--processes", type=int, default=0,
                    help="sending processes (0: the default setting, one per 4 connections, at most one per core)")
    ap.add_argument("--big", type=int, default=100000, help="list size for the memory check (0: skip)")
    ap.add_argument("--child")
    ap.add_argument("--transport", default="smtp")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.size, args.transport, args.port, args.database_url)
        return
    for tool in (SINK, SOURCE):
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} is missing (apt-get install postfix; the daemon need not run)")
    folder = Path(tempfile.mkdtemp(prefix="bulletin-bench-"))
    port = free_port()
    sink = start_sink(port)
    try:
        databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
        length = message_size(folder / "size", args.size)
        print(f"one message of ours is {length} bytes; smtp-source sends the same (-l {length})")
        for database in databases:
            report(folder / database, port, args, database, length)
    finally:
        sink.terminate()
        sink.wait()
        if args.database != "sqlite":
            _pg_admin(f"DROP DATABASE IF EXISTS {RUN}")
            _pg_admin(f"DROP DATABASE IF EXISTS {TPL}")
        shutil.rmtree(folder, ignore_errors=True)


def message_size(folder: Path, size: int) -> int:
    """Bytes of one filled message, to show the comparison is like for like."""
    from bulletin.config import load_settings
    from bulletin.delivery.message import ListIdentity, MessageSkeleton, RecipientRow

    settings = load_settings(folder, sending_domain="news.example.org")
    skeleton = MessageSkeleton(settings, compiled_issue(size), ListIdentity(1, "bench", "Bench", "Bench Team",
                                                                            "bench@example.org"), 1)
    return len(skeleton.build(RecipientRow(1, "r0@example.org", "Reader 0")).data)


def report(folder: Path, port: int, args: argparse.Namespace, database: str, length: int) -> None:
    n = args.recipients
    folder.mkdir(parents=True)
    template = prepare(folder / "template", n, database)
    ours, theirs, ratios = [], [], []
    if args.processes:
        os.environ["BENCH_PROCESSES"] = str(args.processes)
    else:
        os.environ.pop("BENCH_PROCESSES", None)
    processes = 0
    for i in range(args.runs):
        r = run_ours(template, folder, args.size, "smtp", port, database)
        assert r["sent"] == n, r
        processes = int(r["processes"])
        t = run_theirs(n, port, length)
        ours.append(n / r["total_s"])
        theirs.append(t)
        ratios.append(ours[-1] / t)
        print(f"[{database}] run {i + 1}: ours {ours[-1]:.0f} msg/s (queue {r['queue_s']:.2f} s, send "
              f"{r['send_s']:.2f} s, {processes} processes), smtp-source {t:.0f} msg/s, ratio {ours[-1] / t:.2f}",
              flush=True)
    print(f"\n{n} recipients, {length} byte messages, ledger on {database}, default settings "
          f"(4 connections, {processes} processes)")
    print(f"  ours (SMTP to smtp-sink):   median {statistics.median(ours):.0f} msg/s")
    print(f"  smtp-source -d -s 4:        median {statistics.median(theirs):.0f} msg/s")
    print(f"  ratio ours / smtp-source:   median {statistics.median(ratios):.2f} (target >= 0.60)")
    if database != "sqlite" or not args.big:
        return
    md = [run_ours(template, folder, args.size, "maildir", port) for _ in range(max(1, args.runs))]
    maildir_rate = statistics.median(n / r["total_s"] for r in md)
    # Memory is measured per process, so with one: the figure that must stay flat as the list grows.
    os.environ["BENCH_PROCESSES"] = "1"
    single = [run_ours(template, folder, args.size, "smtp", port) for _ in range(max(1, args.runs))]
    peaks = [r["peak_mb"] for r in single]
    single_rate = statistics.median(n / r["total_s"] for r in single)
    print(f"  Maildir outbox (fsync):     median {maildir_rate:.0f} msg/s ({md[0]['files']} files)")
    print(f"  one process, 4 connections: median {single_rate:.0f} msg/s")
    print(f"  peak memory, one process:   median {statistics.median(peaks):.0f} MB")
    big = prepare(folder / "big", args.big)
    r = run_ours(big, folder, args.size, "smtp", port)
    assert r["sent"] == args.big, r
    grow = r["peak_mb"] - statistics.median(peaks)
    print(f"  {args.big} recipients:        {args.big / r['total_s']:.0f} msg/s, peak {r['peak_mb']:.0f} MB "
          f"(+{grow:.0f} MB over {n}; target <= +50 MB)")
    os.environ.pop("BENCH_PROCESSES", None)


if __name__ == "__main__":
    main()
