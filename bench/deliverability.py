"""Deliverability: SpamAssassin's score of a message bulletin sent, next to a minimal reference newsletter.

    python bench/deliverability.py [--runs 5] [--show]

In a fresh workspace the sample issue is sent, through the real commands
(`lists sync`, `subscribers add`, `send`), to the Maildir outbox. The reference
is the same text and HTML put into a plain multipart/alternative message by
Python's email library (From, To, Subject, Date, Message-ID and nothing else).
Both are scored offline with `spamassassin -L -t` (local tests only, no network,
no Bayes training), and the bench prints each score, every rule that hit, and
the rules that hit ours but not the reference. Goal: our score at or below the
reference's, and no penalty (a rule with points above zero) the reference does not
also get; credits only ours earns (MAILING_LIST_MULTI for List-Id) are shown apart. Each run builds and sends anew (new Date,
new tokens); medians are reported.

Needs Debian's `spamassassin`; the bench installs it with apt-get if it is
absent (CI does not run this bench).
"""

from __future__ import annotations

import argparse
import email
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLUG = "2016-shared-service-map"
LIST = "shared-services"
READER = ("jo.bloggs@wellsbury.example.gov.uk", "Jo Bloggs")


@dataclass(frozen=True)
class Score:
    score: float
    rules: dict[str, float]  # rule name -> points


def ensure_spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found:
        return found
    print("spamassassin is absent: installing Debian's package (apt-get install spamassassin)", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "--no-install-recommends", "spamassassin"], check=True)
    found = shutil.which("spamassassin")
    if not found:
        sys.exit("spamassassin is still not on PATH after installing it")
    return found


def bulletin(ws: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BULLETIN_WORKSPACE": str(ws)}
    done = subprocess.run([sys.executable, "-m", "bulletin", *args], cwd=ws, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bulletin {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def from_domain(ws: Path) -> str:
    import tomllib

    lists = tomllib.loads((ws / "subscribers" / "lists.toml").read_text())["list"]
    return str(next(x for x in lists if x["slug"] == LIST)["from_address"]).rpartition("@")[2]


def send_ours(ws: Path) -> bytes:
    """The sample issue as bulletin sends it to one confirmed reader, read back from the Maildir outbox."""
    for name in ("content", "subscribers"):
        shutil.copytree(ROOT / name, ws / name)
    # Aligned as a real deployment is (`bulletin doctor` checks it): envelope, links and From share a domain.
    domain = from_domain(ws)
    (ws / "bulletin.toml").write_text(f'sending_domain = "{domain}"\npublic_base_url = "https://{domain}"\n')
    bulletin(ws, "lists", "sync")
    bulletin(ws, "subscribers", "add", READER[0], "--list", LIST, "--name", READER[1])
    bulletin(ws, "send", SLUG, "--list", LIST, "--quiet")
    sent = sorted((ws / ".bulletin" / "outbox" / "new").iterdir())
    if len(sent) != 1:
        sys.exit(f"expected one message in the outbox, found {len(sent)}")
    return sent[0].read_bytes()


def reference_of(ours: bytes) -> bytes:
    """The same text and HTML, From, To and Subject in the plainest message Python's email library makes."""
    parsed = email.message_from_bytes(ours, policy=policy.default)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = parsed["From"].addresses[0]
    msg["To"] = parsed["To"].addresses[0]
    msg["Subject"] = str(parsed["Subject"])
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=parsed["From"].addresses[0].domain)
    msg.set_content(parsed.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    msg.add_alternative(parsed.get_body(("html",)).get_content(), subtype="html")  # type: ignore[union-attr]
    return msg.as_bytes()


_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\b", re.M)


def score(spamassassin: str, message: bytes) -> Score:
    done = subprocess.run([spamassassin, "-L", "-t"], input=message, capture_output=True, check=False)
    out = done.stdout.decode("utf-8", "replace")
    header = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.M)
    if header is None:
        sys.exit(f"spamassassin gave no X-Spam-Status (exit {done.returncode}):\n{done.stderr.decode()[-2000:]}")
    details = out.split("Content analysis details:", 1)[-1]
    return Score(score=float(header.group(1)), rules={m.group(2): float(m.group(1)) for m in _RULE.finditer(details)})


def show(name: str, s: Score) -> None:
    rules = ", ".join(f"{r} {p:+.3f}" for r, p in sorted(s.rules.items(), key=lambda kv: -kv[1])) or "(none)"
    print(f"  {name:<10} {s.score:6.1f}  {rules}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="Sends to score; medians are reported.")
    ap.add_argument("--show", action="store_true", help="Print the headers of our last message.")
    args = ap.parse_args()
    spamassassin = ensure_spamassassin()
    ours_scores, ref_scores, extra_rules = [], [], set()
    last = b""
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            last = send_ours(Path(tmp))
        ours, ref = score(spamassassin, last), score(spamassassin, reference_of(last))
        ours_scores.append(ours.score)
        ref_scores.append(ref.score)
        extra = {r for r in set(ours.rules) - set(ref.rules) if ours.rules[r] > 0}
        bonus = {r for r in set(ours.rules) - set(ref.rules) if ours.rules[r] <= 0}
        extra_rules |= extra
        print(f"run {run}:")
        show("ours", ours)
        show("reference", ref)
        print(f"  penalties only ours hit: {', '.join(sorted(extra)) or 'none'}; "
              f"credits only ours earned: {', '.join(sorted(bonus)) or 'none'}", flush=True)
    if args.show:
        print(last.split(b"\r\n\r\n", 1)[0].decode())
    ours_md, ref_md = statistics.median(ours_scores), statistics.median(ref_scores)
    print(f"\nSpamAssassin (spamassassin -L -t), {args.runs} runs")
    print(f"  ours:      median {ours_md:.1f}")
    print(f"  reference: median {ref_md:.1f}")
    print(f"  difference ours - reference: {ours_md - ref_md:+.1f} (goal <= 0)")
    print(f"  penalties only ours hit: {', '.join(sorted(extra_rules)) or 'none'} (goal: none)")
    met = ours_md <= ref_md and not extra_rules
    print(f"  goal {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
