"""Render benchmark: build time of the sample issue, and `Compiled.fill` against a full re-render.

Both fill and re-render run in this one process on one core, so the ratio
compares like with like. Prints medians of several runs. The targeted figure
fills a copy of the sample issue with three blocks for some readers
(`audience:` front matter), each recipient with their own attributes, so it
includes choosing the blocks; it is reported beside the untargeted fill.

    python bench/render.py [--runs 5] [--recipients 20000] [--rerenders 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bulletin.audience.conditions import Reader  # noqa: E402
from bulletin.compose import load_issue  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.render.build import build_issue, compile_issue, issue_folder  # noqa: E402
from bulletin.render.compiled import LIST_SLOTS, SLOTS, Recipient, Sender  # noqa: E402
from bulletin.render.media import media_url  # noqa: E402
from bulletin.render.pipeline import render_html, render_text  # noqa: E402
from bulletin.render.templating import make_environments  # noqa: E402

SLUG = "2016-shared-service-map"
FILL_TARGET = 20_000
TARGETED_FILL_TARGET = 20_000
AUDIENCES = {  # three targeted blocks of the sample issue
    "03-template-documents.md": "role contains 'hr' or role starts with 'head of'",
    "06-briefing-papers.md": "role contains 'finance'",
    "09-learning-event.md": "region in ('north', 'east') and not subscribed before 2016-01-01",
}
ROLES = ("Finance officer", "HR lead", "Head of ICT", "Payroll manager", "Chief executive")
REGIONS = ("north", "south", "east", "west")
RATIO_TARGET = 100


def recipients(n: int) -> list[Recipient]:
    base = "https://news.example.org"
    return [
        Recipient(
            name=f"Officer {i}",
            unsubscribe_url=f"{base}/unsubscribe/{'u' * 60}{i}",
            preferences_url=f"{base}/preferences/{'p' * 40}{i}",
            view_online_url=f"{base}/archive/{SLUG}/",
            reply_address=f"reply+{'r' * 26}{i}@news.example.org",
        )
        for i in range(n)
    ]


def readers(n: int) -> list[Reader]:
    import datetime as dt

    joined = dt.datetime(2015, 6, 1, tzinfo=dt.UTC)
    return [Reader(email=f"officer{i}@example.org", name=f"Officer {i}", organisation="Council",
                   attributes={"role": ROLES[i % len(ROLES)], "region": REGIONS[i % len(REGIONS)]},
                   subscribed=joined + dt.timedelta(days=i % 400)) for i in range(n)]


def add_audiences(folder: Path) -> None:
    for name, audience in AUDIENCES.items():
        text = (folder / name).read_text(encoding="utf-8")
        (folder / name).write_text(text.replace("---\n", f"---\naudience: \"{audience}\"\n", 1), encoding="utf-8")


def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="Repetitions; medians are reported.")
    ap.add_argument("--recipients", type=int, default=20_000, help="Recipients per fill run.")
    ap.add_argument("--rerenders", type=int, default=20, help="Recipients per full re-render run.")
    ap.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        shutil.copytree(ROOT / "content", ws / "content")
        settings = load_settings(ws, public_base_url="https://news.example.org", sending_domain="news.example.org")
        build_issue(settings, SLUG)  # warm-up: imports, template compilation caches
        build_s = statistics.median(timed(build_issue, settings, SLUG) for _ in range(args.runs))
        sender = Sender("Northshire Shared Services Partnership", "Shared Services e-bulletin",
                        "14 Guildhall Walk, Wellsbury, WB1 4QT, United Kingdom")
        compiled = compile_issue(settings, SLUG).for_sender(sender)  # once per list, as a send does

        people = recipients(args.recipients)

        def fill_all() -> None:
            for r in people:
                compiled.fill(r)

        shutil.copytree(ws / "content" / SLUG, ws / "content" / "targeted")
        add_audiences(ws / "content" / "targeted")
        targeted = compile_issue(settings, "targeted").for_sender(sender)
        pairs = list(zip(people, readers(args.recipients), strict=True))

        def fill_targeted() -> None:
            for r, reader in pairs:
                targeted.fill(r, reader=reader)

        # Alternate the two fills, so a busy machine slows both alike and the ratio stays fair.
        fills, targeted_fills = [], []
        for _ in range(args.runs):
            fills.append(timed(fill_all))
            targeted_fills.append(timed(fill_targeted))
        fill_s, targeted_s = statistics.median(fills), statistics.median(targeted_fills)
        variants = len({targeted.choose(reader) for _, reader in pairs})

        issue = load_issue(issue_folder(settings, SLUG), media_url=media_url(settings, SLUG))
        html_env, text_env = make_environments(settings)
        few = recipients(args.rerenders)

        def rerender_all() -> None:
            for r in few:
                values = {s: r.value(s) for s in SLOTS} | {s: sender.value(s) for s in LIST_SLOTS}
                render_html(html_env, issue, values, settings.public_base_url)
                render_text(text_env, issue, values, settings.public_base_url)

        rerender_s = statistics.median(timed(rerender_all) for _ in range(args.runs))

    fill_rate = args.recipients / fill_s
    targeted_rate = args.recipients / targeted_s
    rerender_rate = args.rerenders / rerender_s
    figures = {
        "build_seconds_median": round(build_s, 4),
        "fill_recipients_per_second_median": round(fill_rate),
        "targeted_fill_recipients_per_second_median": round(targeted_rate),
        "targeted_over_untargeted": round(targeted_rate / fill_rate, 3),
        "targeted_blocks": len(AUDIENCES),
        "targeted_variants_seen": variants,
        "rerender_recipients_per_second_median": round(rerender_rate, 1),
        "fill_over_rerender": round(fill_rate / rerender_rate),
        "html_bytes": len(compiled.fill(people[0]).html.encode()),
        "targets": {"fill_per_second": FILL_TARGET, "ratio": RATIO_TARGET,
                    "targeted_fill_per_second": TARGETED_FILL_TARGET},
        "met": fill_rate >= FILL_TARGET and fill_rate / rerender_rate >= RATIO_TARGET
        and targeted_rate >= TARGETED_FILL_TARGET,
        "runs": args.runs,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"build of {SLUG} (compose + render + write): median {build_s * 1000:.0f} ms over {args.runs} runs")
    print(f"Compiled.fill (HTML + text):        {fill_rate:>10,.0f} recipients/s  (target >= {FILL_TARGET:,})")
    print(f"fill with {len(AUDIENCES)} targeted blocks: {targeted_rate:>10,.0f} recipients/s  "
          f"(target >= {TARGETED_FILL_TARGET:,}; {targeted_rate / fill_rate:.2f}x untargeted, {variants} variants)")
    print(f"full re-render (Jinja+MJML+premailer): {rerender_rate:>7,.1f} recipients/s")
    print(f"fill is {fill_rate / rerender_rate:,.0f}x faster than re-rendering (target >= {RATIO_TARGET}x): "
          f"{'met' if figures['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
