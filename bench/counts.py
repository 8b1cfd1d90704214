"""What the ledger's count triggers cost the hot path: group commits of 250s with and without them.

    python bench/counts.py                  # 2 writers, groups of 4, 6,000 rows, 3 rounds
    python bench/counts.py --writers 1 --group 1

Each writer is a process with its own `SentWriter` (the driver-SQL statement a
send runs per group of 250s) marking its share of one issue's claimed rows
sent. Each round runs once with the count triggers (the statement triggers of
migration 0019 and the row trigger of 0022, which the sent writer's statements
fire) and once with them all disabled, back to back, so a busy machine weighs
on both alike. Beside the rate, the writers' PostgreSQL backends' own CPU per
row, read from /proc (the server must run on this machine). Needs
PostgreSQL at $BULLETIN_BENCH_PG (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG_URL = os.environ.get("BULLETIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TRIGGERS = ("delivery_counts_insert", "delivery_counts_update", "delivery_counts_delete", "delivery_counts_row")


def _write(url: str, ids: list[int], group: int, cpu: mp.SimpleQueue) -> None:
    from bulletin.db import make_engine
    from bulletin.delivery.sent import SentWriter
    from bulletin.models import utcnow

    writer = SentWriter(make_engine(url, upgrade=False), flush_wait=False)  # the setting's default
    writer._cursor.execute("SELECT pg_backend_pid()")
    backend = int(writer._cursor.fetchone()[0])
    before = _cpu_seconds(backend)
    for i in range(0, len(ids), group):
        writer.write([(d, 250) for d in ids[i:i + group]], utcnow())
    cpu.put(_cpu_seconds(backend) - before)
    writer.close()


def _cpu_seconds(pid: int) -> float:
    """A process's user + system CPU from /proc (the server runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fill(url: str, rows: int) -> None:
    from sqlalchemy import text

    from bulletin.db import make_engine, session_scope
    from bulletin.models import IssueRecord, MailingList, Send

    engine = make_engine(url)
    with session_scope(engine) as s:
        mlist = MailingList(slug="l", name="L", from_name="X", from_address="x@example.org")
        issue = IssueRecord(slug="i", title="t", subject="s", compiled="{}", content_hash="0" * 64)
        s.add_all([mlist, issue])
        s.flush()
        send = Send(issue_id=issue.id, list_id=mlist.id, status="sending")
        s.add(send)
        s.flush()
        s.execute(text("INSERT INTO subscriber (email, email_hash, name, organisation, attributes, suppressed, "
                       "created_at, updated_at) SELECT 'r' || g || '@example.org', md5(g::text), '', '', '{}', "
                       "false, now(), now() FROM generate_series(1, :n) g"), {"n": rows})
        s.execute(text("INSERT INTO delivery (issue_id, subscriber_id, send_id, state, message_id, attempts, "
                       "created_at) SELECT :i, id, :s, 'claimed', '<' || id || '@example.org>', 1, now() "
                       "FROM subscriber"), {"i": issue.id, "s": send.id})
    engine.dispose()


def _round(url: str, writers: int, group: int, triggers: bool) -> tuple[float, float]:
    """Rows a second for `writers` processes marking every row sent, and their backends' CPU
    microseconds a row; the rows are reset (and vacuumed) first."""
    from sqlalchemy import text

    from bulletin.db import make_engine

    engine = make_engine(url, upgrade=False)
    with engine.begin() as conn:
        for name in TRIGGERS:  # reset with the triggers off: the counts are not what is measured
            conn.execute(text(f"ALTER TABLE delivery DISABLE TRIGGER {name}"))
        conn.execute(text("UPDATE delivery SET state = 'claimed', sent_at = NULL"))
        ids = [int(r[0]) for r in conn.execute(text("SELECT id FROM delivery ORDER BY id"))]
        for name in TRIGGERS if triggers else ():
            conn.execute(text(f"ALTER TABLE delivery ENABLE TRIGGER {name}"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM delivery, delivery_count, delivery_minute"))  # both ways start alike
    engine.dispose()
    cpu: mp.SimpleQueue = mp.SimpleQueue()
    procs = [mp.Process(target=_write, args=(url, ids[k::writers], group, cpu)) for k in range(writers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    return len(ids) / elapsed, 1e6 * sum(cpu.get() for _ in procs) / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--group", type=int, default=4, help="rows per group commit")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from bulletin.db import scratch_database

    with scratch_database(PG_URL, Path(tempfile.gettempdir()), "bulletin_counts_bench") as url:
        _fill(url, args.rows)
        print(f"{args.rows} rows, {args.writers} writers, groups of {args.group}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        on_all, off_all = [], []
        for r in range(args.rounds):
            on, on_cpu = _round(url, args.writers, args.group, True)
            off, off_cpu = _round(url, args.writers, args.group, False)
            on_all.append((on, on_cpu))
            off_all.append((off, off_cpu))
            print(f"  round {r + 1}: {on:.0f} rows/s with the count triggers, {off:.0f} without "
                  f"({on / off:.2f}); server CPU a row {on_cpu:.0f} and {off_cpu:.0f} us", flush=True)
        print(f"  median: {statistics.median(x for x, _ in on_all):.0f} against "
              f"{statistics.median(x for x, _ in off_all):.0f} rows/s; server CPU a row "
              f"{statistics.median(c for _, c in on_all):.0f} against {statistics.median(c for _, c in off_all):.0f} us")


if __name__ == "__main__":
    main()
