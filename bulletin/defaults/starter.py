"""`bulletin init [DIR]`: a new workspace that builds and sends as created.

It writes bulletin.toml (the main settings set, every other one listed commented
out with what it does), subscribers/lists.toml with one list, a first issue for
that list, and a .gitignore for the state and build folders. Everything is
written to a scratch folder first and moved into place, so a failure leaves
nothing half-made; an existing workspace is refused, never overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bulletin.compose.scaffold import new_issue
from bulletin.config import CONFIG_FILE, STATE_DIR, Settings
from bulletin.errors import StateError

FIRST_LIST = "newsletter"
FIRST_ISSUE = "first-issue"

# Set in the new file (with the defaults' values); every other setting is listed commented out.
MAIN_SETTINGS: dict[str, tuple[object, str]] = {
    "organisation": ("Your organisation", "Who sends the bulletins: shown in every email's footer."),
    "postal_address": ("1 High Street, Anytown, AB1 2CD",
                       "Your postal address, also in the footer (anti-spam law wants one in marketing mail)."),
    "public_base_url": ("http://127.0.0.1:8000",
                        "Where readers reach `bulletin serve` (signup, unsubscribe, archive, images): use https in production."),
    "sending_domain": ("bulletin.localhost",
                       "Domain of the reply+ and bounces+ addresses: mail to it must reach `bulletin inbound`."),
    "timezone": ("Europe/London", "IANA time zone: `send --at` times without an offset, and times shown."),
    "transport": ("maildir", "maildir keeps messages in .bulletin/outbox (safe to try); smtp sends through smtp_host."),
}
EXAMPLES: dict[str, object] = {  # for settings whose default is "unset"
    "database_url": "postgresql://bulletin@db.internal/bulletin",
    "outbox": ".bulletin/outbox",
    "smtp_username": "bulletin",
    "smtp_password": "set BULLETIN_SMTP_PASSWORD instead of writing it here",
    "dkim_key_path": "dkim.pem",
    "imap_username": "bulletin",
    "imap_password": "set BULLETIN_IMAP_PASSWORD instead of writing it here",
    "secret_keys": ["generated into .bulletin/secret_keys.json when unset"],
    "address_key": "generated into .bulletin/address_key.json when unset; never change it",
    "dns_server": "127.0.0.1:53",
    "trusted_proxies": ["10.0.0.0/8"],
    "ses_sns_certificates": ["sns-eu-west-1.pem"],
}
BRAND = """
# Your look, without editing templates. Colours are checked for contrast when you build
# (text 4.5:1, WCAG AA). A list can override any of these in subscribers/lists.toml
# with a [list.brand] table under its [[list]].
[brand]
primary = "#00587c"                   # headings, big figures, buttons (white text on it)
accent = "#00a1b0"                    # rules, quote bars and chart bars
link = "#00587c"
font = "Arial, Helvetica, sans-serif"
footer = ""                           # one line above the unsubscribe links
# logo = "logo.png"                   # an image file in this folder, or an https:// URL
# logo_alt = "Your organisation"
# logo_width = 160
"""
LISTS = """# The bulletins you send. `bulletin lists sync` loads this file into the database:
# new lists are added, changed fields updated, nothing is deleted.
# Fields: slug, name, description, from_name, from_address, reply_to (optional),
# double_opt_in (web signups confirm by email), archive_public (web archive visible),
# and an optional [list.brand] table (same keys as [brand] in bulletin.toml).

[[list]]
slug = "newsletter"
name = "Our newsletter"
description = "News from our team, once a month."
from_name = "Our team"
from_address = "newsletter@example.org"
double_opt_in = true
archive_public = true
"""
GITIGNORE = f"{STATE_DIR}/\nbuild/\n"


@dataclass(frozen=True)
class NewWorkspace:
    folder: Path
    config: Path
    lists: Path
    first_issue: Path


def init_workspace(target: Path, *, today: dt.date | None = None) -> NewWorkspace:
    """Create a workspace in `target` (made if missing); refuses a folder that already is one."""
    target = target.resolve()
    if (target / CONFIG_FILE).exists():
        raise StateError(f"already holds a {CONFIG_FILE}: this is a workspace already "
                         "(edit it, or give `bulletin init` a new folder)", where=str(target))
    clashes = [n for n in (".gitignore", "subscribers", "content") if (target / n).exists()]
    if clashes:
        raise StateError(f"already has {', '.join(clashes)}: give `bulletin init` an empty or new folder",
                         where=str(target))
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".bulletin-init-", dir=target))
    try:
        (scratch / CONFIG_FILE).write_text(config_text(), encoding="utf-8")
        (scratch / "subscribers").mkdir()
        (scratch / "subscribers" / "lists.toml").write_text(LISTS, encoding="utf-8")
        new_issue(scratch / "content", FIRST_ISSUE, title="Our first issue", lists=[FIRST_LIST],
                  subscribers_file=scratch / "subscribers" / "lists.toml", today=today)
        (scratch / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        for item in scratch.iterdir():
            os.replace(item, target / item.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return NewWorkspace(target, target / CONFIG_FILE, target / "subscribers" / "lists.toml",
                        target / "content" / FIRST_ISSUE)


def config_text() -> str:
    """bulletin.toml: the main settings set, then every other setting commented out with its default."""
    out = [f"# {CONFIG_FILE}: the settings of this workspace. BULLETIN_<NAME> environment variables win",
           "# over this file; `bulletin config show` prints what is in effect.", ""]
    for name, (value, why) in MAIN_SETTINGS.items():
        out += [f"# {why}", f"{name} = {_toml(value)}", ""]
    out += ["# Every other setting, at its default: remove the '#' to change one."]
    for name, field in Settings.model_fields.items():
        if name in MAIN_SETTINGS or name in ("workspace", "brand"):
            continue
        shown = EXAMPLES.get(name, field.get_default(call_default_factory=True))
        if shown is None or shown == []:
            continue
        note = f"  # {field.description}" if field.description else ""
        out.append(f"# {name} = {_toml(shown)}{note}")
    return "\n".join(out) + "\n" + BRAND


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string
