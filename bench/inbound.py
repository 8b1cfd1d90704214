"""Inbound benchmark: messages per second through store + classify + match + act, over the sisimai corpus.

Each run starts from a fresh database seeded with one list and a subscriber for
every bounced address the corpus names (so matching, evidence and the bounce
policy really run), then ingests all 629 messages the way a Maildir, mbox or
IMAP run does (`ingest_batch`: one commit per `inbound_batch_size` messages).
`pipe_one_by_one` is the MTA-pipe path (two commits per message), for reference. The peer is flufl.bounce alone
(parse + `all_failures`, no storage, no matching) on the same messages, run in
the same process. Also prints the accuracy figures of the classifier.

    python bench/inbound.py [--runs 5] [--database-url postgresql://...] [--json]
"""

from __future__ import annotations

import argparse
import email
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flufl.bounce import all_failures  # noqa: E402

from bulletin.audience.links import Links  # noqa: E402
from bulletin.config import load_settings  # noqa: E402
from bulletin.db import make_engine, scratch_database, session_scope  # noqa: E402
from bulletin.inbound import ingest  # noqa: E402
from bulletin.inbound.acting.batch import RawMail, ingest_batch  # noqa: E402
from bulletin.inbound.reading.addresses import read_tokens  # noqa: E402
from bulletin.inbound.reading.classify import classify  # noqa: E402
from bulletin.inbound.reading.clean import visible_text  # noqa: E402
from bulletin.inbound.reading.parse import parse_bytes  # noqa: E402
from bulletin.models import MailingList, Subscriber, Subscription  # noqa: E402

# ../shared/corpora beside the checkout; a git worktree (e.g. wt/<branch>) finds it one level further up.
CORPORA = next((p / "shared" / "corpora" for p in ROOT.parents if (p / "shared" / "corpora").is_dir()),
               ROOT.parent / "shared" / "corpora")
SISIMAI = CORPORA / "sisimai"


def corpus_messages() -> list[tuple[str, bytes]]:
    return [(f.name, f.read_bytes()) for f in sorted((SISIMAI / "maildir" / "bsd").iterdir())]


def seed(engine, addresses: set[str]) -> None:  # type: ignore[no-untyped-def]
    """One list and one confirmed subscriber per address, inserted directly (the bench measures inbound)."""
    from bulletin.audience.addresses import address_hash

    with session_scope(engine) as session:
        ml = MailingList(slug="bench", name="Bench", from_name="Bench", from_address="bench@example.org")
        session.add(ml)
        session.flush()
        for addr in sorted(addresses):
            sub = Subscriber(email=addr, email_hash=address_hash(addr))
            session.add(sub)
            session.flush()
            session.add(Subscription(subscriber_id=sub.id, list_id=ml.id, state="confirmed"))


def pipeline_rate(messages: list[tuple[str, bytes]], addresses: set[str], base_url: str | None, *,
                  one_by_one: bool = False) -> float:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with scratch_database(base_url, tmp, "bulletin_bench") as url:
            settings = load_settings(tmp, database_url=url, secret_keys=["bench"], sending_domain="news.example.org")
            engine = make_engine(url, address_key=settings.address_key)
            seed(engine, addresses)
            links = Links.for_settings(settings)
            size = settings.inbound_batch_size
            start = time.perf_counter()
            if one_by_one:
                for _, raw in messages:
                    ingest(engine, settings, raw, source="bench", links=links)
            else:
                for i in range(0, len(messages), size):
                    ingest_batch(engine, settings, [RawMail(raw, "bench") for _, raw in messages[i:i + size]],
                                 links=links)
            elapsed = time.perf_counter() - start
            engine.dispose()
    return len(messages) / elapsed


def classify_rate(messages: list[tuple[str, bytes]], links: Links) -> float:
    start = time.perf_counter()
    for _, raw in messages:
        msg = parse_bytes(raw)
        classify(msg, read_tokens(msg, links, []))
    return len(messages) / (time.perf_counter() - start)


def flufl_rate(messages: list[tuple[str, bytes]]) -> float:
    start = time.perf_counter()
    for _, raw in messages:
        try:
            all_failures(email.message_from_bytes(raw))
        except Exception:  # noqa: BLE001, S112 - the peer's own crashes are part of its run
            continue
    return len(messages) / (time.perf_counter() - start)


def accuracy(links: Links) -> dict[str, object]:
    """The closing-note figures: bounces, complaints, auto-replies, not-bounces, replies, robustness."""
    expected = json.loads((SISIMAI / "expected.json").read_text())["expected"]
    figures: dict[str, list[int]] = {k: [0, 0] for k in (
        "bounce_classified", "bounce_recipient_count", "bounce_recipients_and_kind", "bounce_sisimai_hardbounce", "arf_complaints",
        "auto_replies", "delivery_notices_not_bounces", "not_bounces", "odd_messages_without_crash", "reply_parser_visible_text", "email_reply_parser_agreement",
        "mail_parser_reply_agreement")}

    def tally(key: str, ok: bool) -> None:
        figures[key][0] += int(ok)
        figures[key][1] += 1

    for name, rows in expected.items():
        path = SISIMAI / "maildir" / "bsd" / name
        if not path.exists():
            continue
        msg = parse_bytes(path.read_bytes())
        c = classify(msg, read_tokens(msg, links, []))
        reason = rows[0]["reason"]
        if reason == "feedback":
            tally("arf_complaints", c.kind == "complaint")
        elif reason == "vacation":
            tally("auto_replies", c.kind == "auto_reply")
        elif reason == "delivered":
            tally("delivery_notices_not_bounces", c.kind not in ("bounce", "complaint"))
        else:
            tally("bounce_classified", c.kind == "bounce")
            want = [r["deliverystatus"].startswith("5") if r["deliverystatus"] else r["hardbounce"] for r in rows]
            got = [b.permanent for b in c.bounces]
            tally("bounce_recipient_count", len(got) == len(want))
            tally("bounce_recipients_and_kind", got == want)
            tally("bounce_sisimai_hardbounce", got == [r["hardbounce"] for r in rows])
    for f in sorted((SISIMAI / "maildir" / "not").iterdir()):
        msg = parse_bytes(f.read_bytes())
        tally("not_bounces", classify(msg, read_tokens(msg, links, [])).kind not in ("bounce", "complaint"))
    for folder in ("err", "dos", "mac"):
        for f in sorted((SISIMAI / "maildir" / folder).iterdir()):
            try:
                msg = parse_bytes(f.read_bytes())
                classify(msg, read_tokens(msg, links, []))
                tally("odd_messages_without_crash", True)
            except Exception:  # noqa: BLE001 - counted, the pipeline would quarantine it
                tally("odd_messages_without_crash", False)
    _reply_accuracy(tally)
    return {k: f"{ok}/{total}" for k, (ok, total) in figures.items()}


def _reply_accuracy(tally) -> None:  # type: ignore[no-untyped-def]
    import re

    erp = CORPORA / "email-reply-parser"
    for name, e in json.loads((erp / "expected.json").read_text())["hand"].items():
        checks = []
        v = visible_text((erp / "test" / "emails" / f"{name}.txt").read_text(errors="replace"))
        if "fragment0_equals" in e:
            checks.append(v.strip() == e["fragment0_equals"].strip())
        if "fragment0_matches" in e:
            checks.append(bool(re.search(e["fragment0_matches"], v)))
        if "fragment0_contains" in e:
            checks.append(e["fragment0_contains"] in v)
        if checks:
            tally("reply_parser_visible_text", all(checks))
    generated = json.loads((erp / "expected.json").read_text())["generated_parse_reply_email_reply_parser_0_5_12"]
    for name, want in generated.items():
        v = visible_text((erp / "test" / "emails" / f"{name}.txt").read_text(errors="replace"))
        tally("email_reply_parser_agreement", " ".join(v.split()) == " ".join(want.split()))
    mpr = CORPORA / "mail-parser-reply"
    ref = json.loads((mpr / "expected_generated.json").read_text())["generated_mail_parser_reply_1_36"]
    for name, e in ref.items():
        v = visible_text((mpr / "test" / "emails" / f"{name}.txt").read_text(errors="replace"))
        tally("mail_parser_reply_agreement", " ".join(v.split()) == " ".join((e["latest_reply_body"] or "").split()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="Repetitions; medians are reported.")
    ap.add_argument("--database-url", default=None, help="PostgreSQL server URL (default: a SQLite file).")
    ap.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = ap.parse_args()
    if not SISIMAI.is_dir():
        sys.exit(f"corpus not found: {SISIMAI}")
    messages = corpus_messages()
    with tempfile.TemporaryDirectory() as tmp:
        links = Links.for_settings(load_settings(Path(tmp), secret_keys=["bench"], sending_domain="news.example.org"))
    addresses = set()
    for _, raw in messages:
        msg = parse_bytes(raw)
        c = classify(msg, read_tokens(msg, links, []))
        addresses.update(b.address for b in c.bounces)
        addresses.update(c.complaint_addresses)
    pipeline, one_by_one, classify_only, peer = [], [], [], []
    for _ in range(args.runs):  # interleaved, so a change in machine load hits every figure alike
        pipeline.append(pipeline_rate(messages, addresses, args.database_url))
        one_by_one.append(pipeline_rate(messages, addresses, args.database_url, one_by_one=True))
        classify_only.append(classify_rate(messages, links))
        peer.append(flufl_rate(messages))
    result = {
        "messages": len(messages),
        "database": "postgresql" if args.database_url else "sqlite",
        "pipeline_msgs_per_s": round(statistics.median(pipeline), 1),
        "pipe_one_by_one_msgs_per_s": round(statistics.median(one_by_one), 1),
        "classify_only_msgs_per_s": round(statistics.median(classify_only), 1),
        "peer_flufl_bounce_only_msgs_per_s": round(statistics.median(peer), 1),
        "ratio_pipeline_to_peer": round(statistics.median(pipeline) / statistics.median(peer), 2),
        "runs": args.runs,
        "accuracy": accuracy(links),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if key == "accuracy":
            for k, v in value.items():  # type: ignore[union-attr]
                print(f"  {k:34} {v}")
        else:
            print(f"{key:36} {value}")


if __name__ == "__main__":
    main()
