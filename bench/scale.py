"""A large list on PostgreSQL, end to end: import, queue, send with two workers, status, report.

    python bench/scale.py                         # 200,000 subscribers
    python bench/scale.py --subscribers 1000000   # the closing figure (takes a while; run once)

On a shared machine wall time also counts waiting for a core, so each command's
own CPU seconds (from wait4) are printed beside it. Every step is the real command line in its own process (so peak RSS is that
process's own, read with wait4): `subscribers import` (COPY), `send --queue-only`
of the sample issue, two `bulletin worker` processes (4 connections between
them) relaying to Postfix's smtp-sink, then `status` and `report`. Beside the
command times (which include starting Python, about 0.5 s), `status` and
`report` are also timed as function calls, median of 5, since the goal is about
the queries, and beside them the floor: a bare Python process that imports psycopg,
connects and runs status's first query. While the workers send, a probe runs the ledger's own `claim`
(200 rows, then gives them back) nine times, half a second apart, from 1 % and from 99 % of the send:
the claim should cost the same on a full ledger and an almost-drained one.
smtp-sink logs every RCPT TO, so duplicates and missing recipients are counted
at the sink. Needs PostgreSQL at $BULLETIN_BENCH_PG (database bulletin_scale, or
$BULLETIN_BENCH_DB, is created and dropped) and /usr/sbin/smtp-sink.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("BULLETIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = os.environ.get("BULLETIN_BENCH_DB", "bulletin_scale")  # another name lets two benches share a server
ISSUE = "2016-shared-service-map"
LIST = "shared-services"
SINK = "/usr/sbin/smtp-sink"


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


def db_url(db: str = DB) -> str:
    return PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{db}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workspace(folder: Path, port: int, db: str = DB, name: str = "ws") -> Path:
    ws = folder / name
    ws.mkdir()
    shutil.copytree(ROOT / "subscribers", ws / "subscribers")
    shutil.copytree(ROOT / "content", ws / "content")
    (ws / "bulletin.toml").write_text(
        f'database_url = "{db_url(db)}"\nsending_domain = "news.example.org"\n'
        f'public_base_url = "https://news.example.org"\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
        f"smtp_port = {port}\nsmtp_connections = 2\n"
        # smtp-sink stands in for a relay that signs (SES-like): the preflight alignment check is not measured here.
        "relay_signs_dkim = true\n")
    return ws


def write_csv(path: Path, n: int) -> None:
    with path.open("w") as fh:
        fh.write("email,name,organisation\n")
        for i in range(n):
            fh.write(f"r{i}@example.org,Reader {i},Council {i % 400}\n")


def bulletin(ws: Path, *args: str, stdout=subprocess.DEVNULL, stderr=None) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bulletin", *args], cwd=ws, env=env, stdout=stdout,
                            stderr=stderr)


def timed(ws: Path, *args: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one command, which must succeed."""
    t0 = time.perf_counter()
    proc = bulletin(ws, *args)
    return _reap(proc, t0, args)


def _reap(proc: subprocess.Popen[bytes], t0: float, args: tuple[str, ...]) -> tuple[float, float]:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"bulletin {' '.join(args)} failed with {proc.returncode}")
    print(f"    ({' '.join(args[:2])}: {usage.ru_utime + usage.ru_stime:.1f} CPU s of its own)", flush=True)
    return wall, usage.ru_maxrss / 1024


def engine_and_settings(ws: Path):  # type: ignore[no-untyped-def]
    from bulletin.config import load_settings
    from bulletin.db import make_engine

    settings = load_settings(ws)
    return make_engine(settings.effective_database_url, upgrade=False, address_key=settings.address_key), settings


def sent_count(engine, send_id: int) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM delivery WHERE send_id = :s AND state = 'sent'"),
                                {"s": send_id}).scalar_one())


def probe_claims(engine, send_id: int, list_id: int, times: int = 15, gap: float = 0.5) -> list[float]:  # type: ignore[no-untyped-def]
    """Time the ledger's own claim of 200 rows as a worker makes it (forward from the last id it claimed,
    here the highest id sent at that moment), `times` times `gap` seconds apart, so one passing burst
    (a checkpoint after the queue's COPY, a worker's fill) weighs on one sample, not all; then once from
    the start (the rescan a worker makes every 30 s). Each claim gives its rows back at once so the
    workers send them. Returns the forward times of the claims that took 200 rows, then the rescan's.
    Fifteen, not nine: the median of nine swung about 1.5x from run to run (stop 27), as much as the
    goal's whole margin."""
    from sqlalchemy import text

    from bulletin.delivery import ledger

    def last_sent() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM delivery WHERE send_id = :s "
                                         "AND state = 'sent'"), {"s": send_id}).scalar_one())

    out, got = [], []
    for start in [None] * times + [0]:
        after = last_sent() if start is None else start
        t0 = time.perf_counter()
        rows = ledger.claim(engine, send_id, list_id, f"probe:{os.getpid()}", 200, after=after)
        out.append((time.perf_counter() - t0) * 1000)
        got.append(len(rows))
        ledger.unclaim(engine, [r.delivery_id for r in rows])
        if start is None:
            time.sleep(gap)
    # Near the end, every open row past the highest sent id may already be the workers': a claim that
    # finds nothing to take is cheap and says nothing about the cost of claiming 200. Say so, and keep
    # only the full claims (all of them, if none was full).
    print(f"    (claim probe: rows claimed {got[:-1]}, rescan {got[-1]})", flush=True)
    full = [ms for ms, n in zip(out[:-1], got[:-1], strict=True) if n == 200]
    return (full or out[:-1]) + out[-1:]


def send_phase(ws: Path, n: int, port: int, deadline: float = 0.0) -> dict[str, object]:
    from bulletin.db import session_scope
    from bulletin.models import Send

    engine, _ = engine_and_settings(ws)
    with session_scope(engine) as session:
        send = session.exec(__import__("sqlmodel").select(Send)).one()
        send_id, list_id = int(send.id or 0), int(send.list_id)
    sink_log = ws.parent / "sink.log"
    with sink_log.open("wb") as log:
        sink = subprocess.Popen([SINK, "-v", "-u", "nobody", f"127.0.0.1:{port}", "256"], stdout=log, stderr=log)
    time.sleep(0.3)
    t0 = time.perf_counter()
    logs = [(ws.parent / f"worker{i}.log").open("wb") for i in range(2)]
    workers = [bulletin(ws, "worker", "--poll", "0.5", stderr=logs[i]) for i in range(2)]
    early, late, done, shown = [], [], 0, t0
    while True:
        done = sent_count(engine, send_id)
        if not early and done >= n * 0.01:
            early = probe_claims(engine, send_id, list_id, gap=min(0.5, n / 1_800_000))
        if not late and done >= n * 0.99:
            late = probe_claims(engine, send_id, list_id, gap=min(0.5, n / 1_800_000))
        if done >= n or (deadline and time.perf_counter() - t0 > deadline):
            break
        if time.perf_counter() - shown > 60:
            shown = time.perf_counter()
            print(f"    ({done} sent after {shown - t0:.0f} s: {done / (shown - t0):.0f} msg/s)", flush=True)
        time.sleep(0.2)
    send_s = time.perf_counter() - t0
    peaks = []
    for w in workers:
        w.send_signal(signal.SIGTERM)
        peaks.append(_reap(w, t0, ("worker",))[1])
    for fh in logs:
        fh.close()
    time.sleep(1.0)  # smtp-sink writes its log after answering
    sink.terminate()
    sink.wait()
    counts = collections.Counter(line.split(b"RCPT TO:<", 1)[1].split(b">", 1)[0]
                                 for line in sink_log.open("rb") if b"RCPT TO:<" in line)
    expected = {f"r{i}@example.org".encode() for i in range(n)}
    if done < n:  # stopped at the deadline: what the ledger says was sent must be exactly what arrived
        from sqlalchemy import text

        with engine.connect() as conn:
            expected = {e.encode() for (e,) in conn.execute(text(
                "SELECT s.email FROM delivery d JOIN subscriber s ON s.id = d.subscriber_id "
                "WHERE d.send_id = :s AND d.state = 'sent'"), {"s": send_id})}
        print(f"    (stopped at the {deadline:.0f} s deadline with {len(expected)} of {n} marked sent: "
              "missing and unexpected below are against the rows marked sent)", flush=True)
    engine.dispose()
    return {"send_s": send_s, "sent": len(expected), "worker_peak_mb": peaks, "claim_early_ms": early,
            "claim_late_ms": late,
            "received": sum(counts.values()), "duplicates": sum(c - 1 for c in counts.values() if c > 1),
            "missing": len(expected - set(counts)), "unexpected": len(set(counts) - expected)}


def ledger_phase(ws: Path, n: int) -> dict[str, object]:
    """--no-send: move the ledger from queued to sent in SQL, 20,000 rows a transaction (about what
    the workers' group commits amount to between two autovacuums), probing the claim at 1 % and 99 %.
    Measures the ledger, not SMTP: for a machine too busy to send a million messages in the time."""
    from sqlalchemy import text

    engine, _ = engine_and_settings(ws)
    with engine.connect() as conn:
        send_id, list_id = conn.execute(text("SELECT id, list_id FROM send")).one()
    mark = text("UPDATE delivery SET state = 'sent', sent_at = now(), smtp_code = 250 WHERE id IN "
                "(SELECT id FROM delivery WHERE send_id = :s AND state = 'queued' ORDER BY id LIMIT :k)")
    early, late, done = [], [], 0
    t0 = time.perf_counter()
    while done < n:
        if not early and done >= n * 0.01:
            early = probe_claims(engine, send_id, list_id, gap=0.0)
        if not late and done >= n * 0.99:
            late = probe_claims(engine, send_id, list_id, gap=0.0)
        step = min(20_000, n - done, max(1, int(n * 0.01) - done) if done < n * 0.01 else
                   max(1, int(n * 0.99) - done) if done < n * 0.99 else n - done)
        with engine.begin() as conn:
            done += conn.execute(mark, {"s": send_id, "k": step}).rowcount
    engine.dispose()
    return {"send_s": time.perf_counter() - t0, "worker_peak_mb": [], "claim_early_ms": early,
            "claim_late_ms": late, "received": 0, "duplicates": 0, "missing": 0, "unexpected": 0}


def command_times(ws: Path, runs: int = 3) -> tuple[float, float]:
    """Median wall ms of `status` and of `report` as commands (startup included), quietly.

    Run as an installed copy runs: pip compiles the package's bytecode when it installs
    it, but a checkout run with PYTHONDONTWRITEBYTECODE set (as on the machine these
    figures come from) would compile bulletin's own modules again on every command."""
    import compileall

    compileall.compile_dir(str(ROOT / "bulletin"), quiet=1)

    def median_ms(*args: str) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            proc = bulletin(ws, *args, stderr=subprocess.DEVNULL)
            if proc.wait() != 0:
                raise SystemExit(f"bulletin {' '.join(args)} failed")
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    return median_ms("status", ISSUE), median_ms("report", ISSUE)


FLOOR = ("import sys, psycopg\n"
         "with psycopg.connect(sys.argv[1]) as c:\n"
         "    print(c.execute('SELECT state, sum(n) FROM delivery_count GROUP BY state').fetchall())\n")


def floor_ms(runs: int = 3) -> float:
    """Median wall ms of the least any command reading this ledger can cost: start Python, import
    psycopg, connect, run status's first query, print. Nothing of bulletin, typer, SQLAlchemy.
    The peer of `command_times`, measured in the same run."""
    url = db_url().replace("postgresql+psycopg://", "postgresql://")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR, url], check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def empty_ledger_times(folder: Path, port: int) -> tuple[float, float]:
    """The same commands on an empty ledger of the same server (the issue queued to nobody): what
    starting Python, the CLI, SQLAlchemy and the driver cost whatever the ledger holds."""
    empty = f"{DB}_empty"
    admin(f"DROP DATABASE IF EXISTS {empty}")
    admin(f"CREATE DATABASE {empty}")
    try:
        ws = workspace(folder, port, empty, "empty")
        for args in (("db", "upgrade"), ("lists", "sync"), ("send", ISSUE, "--list", LIST, "--queue-only", "-q")):
            if bulletin(ws, *args, stderr=subprocess.DEVNULL).wait() != 0:
                raise SystemExit(f"bulletin {' '.join(args)} failed on the empty ledger")
        return command_times(ws)
    finally:
        admin(f"DROP DATABASE IF EXISTS {empty} WITH (FORCE)")


def query_phase(ws: Path) -> dict[str, object]:
    from sqlalchemy import text

    from bulletin.db import session_scope
    from bulletin.delivery.service import issue_status
    from bulletin.report import issue_report

    engine, _ = engine_and_settings(ws)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE delivery")
    status_ms, report_ms = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        with session_scope(engine) as session:
            issue_status(session, ISSUE)
        status_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with session_scope(engine) as session:
            issue_report(session, ISSUE)
        report_ms.append((time.perf_counter() - t0) * 1000)
    with engine.connect() as conn:
        issue_id = conn.execute(text("SELECT id FROM issue WHERE slug = :s"), {"s": ISSUE}).scalar_one()
        plans = {}
        for name, sql in EXPLAINS.items():
            sql = sql.replace(":issue", str(issue_id)).replace("%", "%%")  # driver SQL: % is a placeholder
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
            plans[name] = [r[0] for r in rows]
        sizes = conn.exec_driver_sql(
            "SELECT c.relname, c.relkind, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') "
            "AND pg_relation_size(c.oid) > 1048576 ORDER BY 3 DESC").all()
    engine.dispose()
    return {"status_ms": status_ms, "report_ms": report_ms, "plans": plans, "sizes": sizes}


EXPLAINS = {
    # What status and report run since migration 0019: the running counts, and the ledger only
    # through index ranges that hold the rows counted (the last minute, the rows with an error).
    "status: counts by state": "SELECT state, sum(n) FROM delivery_count WHERE issue_id = :issue GROUP BY state",
    "status: sent in the last minute": "SELECT count(*) FROM delivery WHERE issue_id = :issue AND state = 'sent' "
                                       "AND sent_at >= now() - interval '1 minute'",
    "status: errors": "SELECT smtp_code, last_error, count(*) FROM delivery WHERE issue_id = :issue "
                      "AND last_error IS NOT NULL GROUP BY smtp_code, last_error ORDER BY count(*) DESC LIMIT 10",
    "report: first and last sent": "SELECT CAST(EXTRACT(EPOCH FROM min(sent_at)) AS BIGINT), "
                                   "CAST(EXTRACT(EPOCH FROM max(sent_at)) AS BIGINT) FROM delivery "
                                   "WHERE issue_id = :issue AND state = 'sent' AND sent_at IS NOT NULL",
    "report: timeline": "SELECT minute - minute % 60, sum(n) FROM delivery_minute WHERE issue_id = :issue "
                        "GROUP BY 1",
    "report: by segment": "SELECT segment, sum(n), sum(CASE WHEN state = 'sent' THEN n ELSE 0 END), "
                          "sum(CASE WHEN state = 'failed' THEN n ELSE 0 END) FROM delivery_count "
                          "WHERE issue_id = :issue GROUP BY segment HAVING sum(n) > 0",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=200_000)
    ap.add_argument("--keep", action="store_true", help="keep the database and workspace")
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="stop the workers after this many seconds of sending (0: send everything)")
    ap.add_argument("--no-send", action="store_true",
                    help="mark the ledger sent in SQL instead of sending (claim probes, status and report still run)")
    args = ap.parse_args()
    n = args.subscribers
    folder = Path(tempfile.mkdtemp(prefix="bulletin-scale-"))
    port = free_port()
    admin(f"DROP DATABASE IF EXISTS {DB}")
    admin(f"CREATE DATABASE {DB}")
    try:
        ws = workspace(folder, port)
        timed(ws, "db", "upgrade")
        timed(ws, "lists", "sync")
        csv = folder / "subscribers.csv"
        write_csv(csv, n)
        imp = timed(ws, "subscribers", "import", str(csv), "--list", LIST, "-q")
        print(f"{n} subscribers on PostgreSQL; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"  import (COPY):        {imp[0]:.1f} s, peak {imp[1]:.0f} MB", flush=True)
        queue = timed(ws, "send", ISSUE, "--list", LIST, "--queue-only", "-q")
        print(f"  queue one issue:      {queue[0]:.1f} s, peak {queue[1]:.0f} MB", flush=True)
        s = ledger_phase(ws, n) if args.no_send else send_phase(ws, n, port, args.deadline)
        if not s["claim_late_ms"]:  # stopped at --deadline before 99 %: the probe is the last one taken
            s["claim_late_ms"] = s["claim_early_ms"]
            print("  (the 99 % claim probe was not reached before the deadline; both figures are the 1 % one)")
        early, late = statistics.median(s["claim_early_ms"][:-1]), statistics.median(s["claim_late_ms"][:-1])  # type: ignore[index]
        if args.no_send:
            print(f"  (no send: ledger marked sent in SQL in {s['send_s']:.1f} s)")
        sent = s.get("sent", n)
        print(f"  send, 2 workers:      {sent} in {s['send_s']:.1f} s ({sent / s['send_s']:.0f} msg/s), peak "  # type: ignore[operator]
              f"{', '.join(f'{p:.0f}' for p in s['worker_peak_mb'])} MB")  # type: ignore[union-attr]
        print(f"  claim of 200 rows:    median {early:.1f} ms at 1 %, {late:.1f} ms at 99 % "
              f"(ratio {max(early, late) / min(early, late):.2f}; goal <= 1.5); a rescan from the start: "
              f"{s['claim_early_ms'][-1]:.1f} ms at 1 %, {s['claim_late_ms'][-1]:.1f} ms at 99 %")  # type: ignore[index]
        print(f"  at the sink:          {s['received']} received, {s['duplicates']} duplicates, "
              f"{s['missing']} missing, {s['unexpected']} unexpected")
        st = timed(ws, "status", ISSUE)
        rp = timed(ws, "report", ISSUE)
        q = query_phase(ws)
        print(f"  status:               median {statistics.median(q['status_ms']):.0f} ms as a call "  # type: ignore[arg-type]
              f"({st[0] * 1000:.0f} ms as a command)")
        print(f"  report:               median {statistics.median(q['report_ms']):.0f} ms as a call "  # type: ignore[arg-type]
              f"({rp[0] * 1000:.0f} ms as a command)")
        full, floor, empty = command_times(ws), floor_ms(), empty_ledger_times(folder, port)
        print(f"  as commands, median of 3: status {full[0]:.0f} ms, report {full[1]:.0f} ms here; on an empty "
              f"ledger of the same server {empty[0]:.0f} ms and {empty[1]:.0f} ms (startup, not the ledger)")
        print(f"  the floor: Python + psycopg + connect + status's first query, nothing else: {floor:.0f} ms "
              f"(status {full[0] / floor:.2f}x, report {full[1] / floor:.2f}x that)")
        for name, plan in q["plans"].items():  # type: ignore[union-attr]
            print(f"  EXPLAIN {name}:")
            for line in plan:
                print(f"      {line}")
        print("  sizes (relations over 1 MB):")
        for rel, kind, size in q["sizes"]:  # type: ignore[union-attr]
            print(f"      {'table' if kind == 'r' else 'index'} {rel}: {size / 1048576:.1f} MB")
    finally:
        if not args.keep:
            admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
