"""Web benchmark: requests per second of one-click unsubscribe and the signup form, under wrk.

Starts `bulletin serve --workers N` on a throw-away workspace (SQLite by
default, or --database-url for PostgreSQL) with the rate limits lifted, then
runs Debian's wrk against five endpoints and prints the median of several runs:

  healthz       GET  /healthz   (the baseline: app, middleware and uvicorn, no database)
  signup-form   GET  /signup/shared-services            (page + CSRF cookie)
  signup-post   POST /signup/shared-services, a new address each request
                (subscriber, pending subscription, consent event, confirmation mail to the Maildir)
  one-click     POST /unsubscribe/{token} List-Unsubscribe=One-Click, cycling over N subscribers
                (first pass unsubscribes, later passes are the idempotent repeat)
  archive       GET  /archive/
  console-search     GET /admin/subscribers?q=<name prefix>, signed in as staff, over --console-subscribers
  console-subscriber GET /admin/subscribers/{id} (profile, consent log, bounces), cycling over ids

The two console endpoints need at least 200 requests per second on SQLite with
100,000 subscribers (work issue 16); `--only console` runs just those.

and, before those, the signup answer time for 20 new and 20 already subscribed
addresses posted alternately in one run (median of each and their ratio; the
goal is 0.8-1.25: the answer must not tell them apart). The confirmation and
"already subscribed" mails are queued and sent by the in-app notice sender, so
neither answer waits on mail.

Report only: the figures depend on the machine and on what else runs on it.

    python bench/web.py [--workers 1 2] [--runs 3] [--duration 5] [--connections 16] [--json]
    python bench/web.py --only console --workers 1 2 --console-subscribers 100000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bulletin.audience.lifecycle import subscribe  # noqa: E402
from bulletin.audience.links import Links  # noqa: E402
from bulletin.audience.lists import load_lists, sync_lists  # noqa: E402
from bulletin.audience.subscribers import get_list  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.db import make_engine, session_scope  # noqa: E402

LUA_ONE_CLICK = """
paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", paths[(i %% #paths) + 1],
    {["Content-Type"] = "application/x-www-form-urlencoded"}, "List-Unsubscribe=One-Click")
end
"""
LUA_SIGNUP = """
local counter = 0
tid = 0
threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
request = function()
  counter = counter + 1
  local body = "csrf_token=%(token)s&email=bench-%(tag)s-" .. tid .. "-" .. counter .. "%%40example.org&name=Bench"
  return wrk.format("POST", "/signup/shared-services", {["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "bulletin_csrf=%(nonce)s"}, body)
end
"""


LUA_CONSOLE = """
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", string.format("%(pattern)s", (i * 7919) %% %(modulo)d + 1), {["Cookie"] = "%(cookie)s"})
end
"""
BENCH_PASSWORD = "bench-console-password-4821"
FIRST_NAMES = ("Amina", "Ben", "Chloe", "Dev", "Erin", "Farah", "Gus", "Hana", "Ivan", "Jo", "Kemi", "Liam")


def add_people(ws: Path, count: int) -> None:
    """`count` subscribers through the CSV importer (one batch transaction per few thousand rows)."""
    from bulletin.accounts import add_account
    from bulletin.audience.importer import import_csv

    settings = load_settings(ws)
    csv_path = ws / "people.csv"
    with csv_path.open("w") as fh:
        fh.write("email,name,organisation,lists\n")
        for i in range(count):
            first = FIRST_NAMES[i % len(FIRST_NAMES)]
            fh.write(f"{first.lower()}.{i}@council{i % 300}.example.org,{first} Person{i},Council{i % 300},"
                     "shared-services\n")
    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    import_csv(engine, csv_path, actor="bench")
    with session_scope(engine) as session:
        add_account(session, "bench@council.example", "staff", BENCH_PASSWORD, actor="bench")
    engine.dispose()


def console_cookie(base: str) -> str:
    """Sign in as the bench account; the Cookie header wrk sends with every console request."""
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        page = client.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = client.post("/admin/login", data={"csrf_token": token, "email": "bench@council.example",
                                              "password": BENCH_PASSWORD, "next": "/admin"})
        if r.status_code != 303:
            raise SystemExit(f"bench sign-in failed: {r.status_code}")
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(ws: Path, database_url: str | None, subscribers: int, port: int) -> list[str]:
    """Workspace with lists and confirmed subscribers; returns their one-click unsubscribe paths."""
    shutil.copytree(ROOT / "subscribers", ws / "subscribers")
    toml = f'public_base_url = "http://127.0.0.1:{port}"\nsending_domain = "news.example.org"\n'
    if database_url:
        toml += f'database_url = "{database_url}"\n'
    (ws / "bulletin.toml").write_text(toml)
    settings = load_settings(ws)
    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    links = Links.for_settings(settings)
    paths = []
    with session_scope(engine) as session:
        sync_lists(session, load_lists(ws / "subscribers" / "lists.toml"))
        lid = get_list(session, "shared-services").id
        for i in range(subscribers):
            sub = subscribe(session, f"reader{i}-{port}@example.org", [lid], confirmed=True, source="cli", actor="bench")
            paths.append(links.unsubscribe_url(sub.id, lid).split("/", 3)[3])
    engine.dispose()
    return ["/" + p for p in paths]


def serve(ws: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """The server, its stderr kept in the workspace (a pipe nobody reads would block it when full)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env.update({"BULLETIN_WEB_IP_LIMIT": "1000000000", "BULLETIN_WEB_ADDRESS_LIMIT": "1000000000"})
    proc = subprocess.Popen([sys.executable, "-m", "bulletin", "-w", str(ws), "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                            stderr=(ws / "server.log").open("wb"))
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/signup", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start: {(ws / 'server.log').read_text()}")


def wrk(url: str, script: Path | None, duration: int, connections: int) -> tuple[float, int]:
    """(requests per second, non-2xx responses) of one wrk run."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def csrf(base: str) -> tuple[str, str]:
    resp = httpx.get(f"{base}/signup/shared-services")
    token = re.search(r'name="csrf_token" value="([^"]+)"', resp.text).group(1)  # type: ignore[union-attr]
    return token, resp.cookies["bulletin_csrf"]


def signup_timing(base: str, known: list[str], count: int) -> dict[str, float]:
    """Median answer time (ms) of signups for new and for subscribed addresses, alternated in one run."""
    times: dict[str, list[float]] = {"new": [], "known": []}
    with httpx.Client(base_url=base) as client:
        page = client.get("/signup/shared-services")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        for i in range(count):
            for kind, addr in (("new", f"timing-new-{i}@example.org"), ("known", known[i])):
                data = {"csrf_token": token, "email": addr, "name": "Timing", "organisation": "Bench"}
                start = time.perf_counter()
                resp = client.post("/signup/shared-services", data=data)
                times[kind].append((time.perf_counter() - start) * 1000)
                if resp.status_code != 200:
                    raise SystemExit(f"signup of {addr} answered {resp.status_code}")
    new, old = statistics.median(times["new"]), statistics.median(times["known"])
    return {"new_ms": round(new, 2), "known_ms": round(old, 2), "ratio": round(new / old, 3)}


def bench_workers(workers: int, args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    port = free_port()
    ws = tmp / f"ws-{workers}"
    ws.mkdir()
    paths = prepare(ws, args.database_url, args.subscribers, port)
    if "console" in args.only:
        add_people(ws, args.console_subscribers)
    (tmp / "paths.txt").write_text("\n".join(paths) + "\n")
    (tmp / "one_click.lua").write_text(LUA_ONE_CLICK % {"paths": tmp / "paths.txt"})
    base = f"http://127.0.0.1:{port}"
    proc = serve(ws, port, workers)
    results: dict[str, dict[str, float]] = {}
    try:
        known = [f"reader{i}-{port}@example.org" for i in range(args.timing)]
        results["signup-timing"] = signup_timing(base, known, args.timing)
        token, nonce = csrf(base)
        plans: dict[str, tuple[str, object]] = {}
        if "public" in args.only:
            plans = {"healthz": (f"{base}/healthz", None),
                     "signup-form": (f"{base}/signup/shared-services", None),
                     "signup-post": (base, "signup"),
                     "one-click": (base, tmp / "one_click.lua"),
                     "archive": (f"{base}/archive/", None)}
        if "console" in args.only:
            cookie = console_cookie(base)
            for name, pattern, modulo in (("console-search", "/admin/subscribers?q=council%d", 299),
                                          ("console-subscriber", "/admin/subscribers/%d",
                                           args.console_subscribers)):
                lua = tmp / f"{name}-{workers}.lua"
                lua.write_text(LUA_CONSOLE % {"pattern": pattern, "modulo": modulo, "cookie": cookie})
                plans[name] = (base, lua)
        for name, (url, script) in plans.items():
            runs, bad = [], 0
            for run in range(args.runs):
                if script == "signup":
                    script_path = tmp / f"signup-{workers}-{run}.lua"
                    script_path.write_text(LUA_SIGNUP % {"token": token, "nonce": nonce, "tag": f"w{workers}r{run}"})
                    rps, b = wrk(url, script_path, args.duration, args.connections)
                else:
                    rps, b = wrk(url, script, args.duration, args.connections)  # type: ignore[arg-type]
                runs.append(rps)
                bad += b
            results[name] = {"median_rps": round(statistics.median(runs), 1), "runs": runs, "non_2xx": bad}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log = (ws / "server.log").read_text(errors="replace")
        if args.keep_log:
            shutil.copy(ws / "server.log", Path(args.keep_log).with_suffix(f".w{workers}.log"))
    tracebacks = sum("Traceback" in line for line in log.splitlines())
    if tracebacks:
        print(f"warning: the server with {workers} worker(s) logged {tracebacks} traceback(s)", file=sys.stderr)
    outbox = ws / ".bulletin" / "outbox" / "new"
    if "signup-post" in results:
        results["signup-post"]["confirmation_mails"] = len(list(outbox.iterdir())) if outbox.is_dir() else 0
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts to try")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per endpoint; the median is reported")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="open connections of wrk")
    parser.add_argument("--subscribers", type=int, default=500, help="subscribers whose one-click links are cycled")
    parser.add_argument("--timing", type=int, default=20, help="new and subscribed addresses timed one by one")
    parser.add_argument("--database-url", default=None, help="database to use (default: SQLite in the temp workspace)")
    parser.add_argument("--keep-log", default=None, help="copy each server's stderr next to this path")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--only", nargs="+", choices=("public", "console"), default=["public", "console"],
                        help="which endpoints to run")
    parser.add_argument("--console-subscribers", type=int, default=100_000,
                        help="subscribers in the database for the console endpoints")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    out: dict[str, object] = {"cpus": os.cpu_count(), "database": "postgresql" if args.database_url else "sqlite",
                              "connections": args.connections, "duration_s": args.duration, "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmpdir:
        for workers in args.workers:
            out[f"workers={workers}"] = bench_workers(workers, args, Path(tmpdir))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"web bench: {out['database']}, {out['cpus']} CPUs, wrk -t2 -c{args.connections} -d{args.duration}s, "
          f"median of {args.runs} runs")
    print(f"{'workers':>8}  {'endpoint':<18} {'req/s':>9}  {'non-2xx':>7}")
    for workers in args.workers:
        for name, r in out[f"workers={workers}"].items():  # type: ignore[union-attr]
            if "median_rps" not in r:  # the signup timing, printed below
                continue
            print(f"{workers:>8}  {name:<18} {r['median_rps']:>9.1f}  {r['non_2xx']:>7}")
        res = out[f"workers={workers}"]  # type: ignore[index]
        if "signup-timing" in res:  # type: ignore[operator]
            t = res["signup-timing"]  # type: ignore[index]
            print(f"{'':>8}  signup answer, median of {args.timing} each: new {t['new_ms']} ms, subscribed "
                  f"{t['known_ms']} ms, ratio new/subscribed {t['ratio']} (goal 0.8-1.25)")
        if "one-click" in res and "healthz" in res:  # type: ignore[operator]
            ratio = res["one-click"]["median_rps"] / res["healthz"]["median_rps"]  # type: ignore[index]
            print(f"{'':>8}  one-click / healthz: {ratio:.2f} (target >= 0.25)")
        if "signup-post" in res:  # type: ignore[operator]
            mails = res["signup-post"]["confirmation_mails"]  # type: ignore[index]
            print(f"{'':>8}  ({mails} queued mails sent to the outbox by the in-app notice sender by the end)")


if __name__ == "__main__":
    main()
