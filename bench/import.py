"""Import benchmark: 100,000 generated rows into an empty database, then the same file again.

Each run is a fresh child process on a fresh database, so the peak resident
memory it reports is that import's own. Memory flatness is shown by the same
measurement on a file a tenth the size: streaming in batches means the peak
should barely move. The peer is the per-row ORM path (`lifecycle.subscribe`
for each row, one transaction), the way an import is usually first written;
it runs on a smaller file and is compared in rows per second.

    python bench/import.py [--rows 100000] [--runs 3] [--database-url postgresql://...] [--json]

On SQLite the peak includes the import's page cache, capped at 32 MB
(`bulk.SQLITE_CACHE_KIB`), so it rises from the tenth-size file until that cap
and then stays put (100k and 300k rows peak at the same RSS).

Wall seconds are the figure the target (<= 10 s) is about; CPU seconds are
printed beside them because on a shared machine wall time also counts the
time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bulletin.db import scratch_database  # noqa: E402

LISTS = ["shared-services", "productivity", "workforce", "finance"]
TARGET_S = 10.0


def generate(path: Path, rows: int) -> None:
    """Fictional officers at reserved domains; 1-3 lists each, one attribute column, 1% duplicates."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "name", "organisation", "lists", "role"])
        for i in range(rows):
            n = i - 1 if i % 100 == 99 else i  # a duplicate address every 100 rows
            w.writerow([f"officer.{n}@council{n % 400}.example.gov.uk", f"Officer {n}", f"Council {n % 400}",
                        ";".join(LISTS[: 1 + n % 3]), ("HR", "Finance", "ICT")[n % 3]])


def child(url: str, file: Path, mode: str) -> None:
    """Runs in a fresh process: sync lists, import (twice, or per-row ORM), print figures as JSON."""
    from bulletin.audience.importer import import_csv
    from bulletin.audience.lists import lists_file, sync_file
    from bulletin.db import make_engine, session_scope

    engine = make_engine(url, address_key="bench-address-key-0123456789")
    with session_scope(engine) as s:
        sync_file(s, lists_file(ROOT / "subscribers"))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out: dict[str, float] = {}
    if mode == "peer":
        out["peer_s"] = _orm_per_row(engine, file)
    else:
        t, c = time.perf_counter(), time.process_time()
        first = import_csv(engine, file, actor="bench")
        out["first_s"], out["first_cpu_s"] = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        second = import_csv(engine, file, actor="bench")
        out["second_s"], out["second_cpu_s"] = time.perf_counter() - t, time.process_time() - c
        assert first.created and not first.errors and not second.changed, "re-import changed something"
        out["created"] = first.created
    out["base_rss_mb"] = base_rss / 1024
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine.dispose()
    print(json.dumps(out))


def _orm_per_row(engine, file: Path) -> float:  # type: ignore[no-untyped-def]
    from bulletin.audience.lifecycle import subscribe
    from bulletin.audience.subscribers import get_list
    from bulletin.db import session_scope

    t = time.perf_counter()
    with session_scope(engine) as s, file.open(newline="", encoding="utf-8") as fh:
        ids = {slug: get_list(s, slug).id for slug in LISTS}
        for row in csv.DictReader(fh):
            subscribe(s, row["email"], [ids[x] for x in row["lists"].split(";")], name=row["name"],
                      organisation=row["organisation"], confirmed=True, source="import", actor="bench")
    return time.perf_counter() - t


def run_child(url: str, file: Path, mode: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", url, str(file), mode],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(base_url: str | None, file: Path, mode: str, runs: int, tmp: Path) -> list[dict[str, float]]:
    results = []
    for _ in range(runs):
        with scratch_database(base_url, tmp, "bulletin_bench") as url:
            results.append(run_child(url, file, mode))
    return results


def med(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="Rows in the generated file.")
    ap.add_argument("--runs", type=int, default=3, help="Repetitions; medians are reported.")
    ap.add_argument("--peer-rows", type=int, default=5_000, help="Rows for the per-row ORM peer (0 to skip).")
    ap.add_argument("--database-url", help="PostgreSQL server URL (a fresh database per run); default SQLite.")
    ap.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        big, small, peer = tmp / "big.csv", tmp / "small.csv", tmp / "peer.csv"
        generate(big, args.rows)
        generate(small, max(args.rows // 10, 1))
        runs = measure(args.database_url, big, "bulk", args.runs, tmp)
        smalls = measure(args.database_url, small, "bulk", args.runs, tmp)
        figures: dict[str, object] = {
            "database": "postgresql" if args.database_url else "sqlite",
            "rows": args.rows,
            "runs": args.runs,
            "first_import_s": round(med(runs, "first_s"), 2),
            "reimport_s": round(med(runs, "second_s"), 2),
            # CPU seconds of the importing process: on a shared machine wall time includes waiting for a
            # core; with SQLite (in-process) this is the work itself. PostgreSQL's own work is not in it.
            "first_import_cpu_s": round(med(runs, "first_cpu_s"), 2),
            "reimport_cpu_s": round(med(runs, "second_cpu_s"), 2),
            "rows_per_s": round(args.rows / med(runs, "first_s")),
            "target_s": TARGET_S,
            "ratio_to_target": round(med(runs, "first_s") / TARGET_S, 2),
            "peak_rss_mb": round(med(runs, "peak_rss_mb"), 1),
            "peak_rss_mb_tenth_file": round(med(smalls, "peak_rss_mb"), 1),
            "rss_growth_mb": round(med(runs, "peak_rss_mb") - med(runs, "base_rss_mb"), 1),
            "rss_growth_mb_tenth_file": round(med(smalls, "peak_rss_mb") - med(smalls, "base_rss_mb"), 1),
            "all_first_s": [round(r["first_s"], 2) for r in runs],
        }
        if args.peer_rows:
            generate(peer, args.peer_rows)
            peers = measure(args.database_url, peer, "peer", args.runs, tmp)
            peer_rate = args.peer_rows / med(peers, "peer_s")
            figures["peer_orm_rows_per_s"] = round(peer_rate)
            figures["speedup_vs_orm_peer"] = round(figures["rows_per_s"] / peer_rate, 1)  # type: ignore[operator]
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
