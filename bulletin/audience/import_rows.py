"""Reading an import file: rows parsed, checked and merged into batches, read a batch ahead.

The half of the import that needs no database: `importer` writes what this
reads. Bad rows go to the parse report with their line; good ones are merged
by address hash within a batch (case variants are one person).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bulletin.audience.addresses import has_control_chars, hash_normalised, normalise_address
from bulletin.audience.text import PROBLEM, bad_character
from bulletin.errors import AddressError, ContentError, RowError

KNOWN = ("email", "name", "organisation", "lists")


@dataclass
class ImportReport:
    """What an import did; `errors` are bad rows, `refused` are people it must not re-subscribe."""

    file: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0  # rows folded into an earlier row of the same batch
    subscriptions_added: int = 0
    batches: int = 0
    errors: list[RowError] = field(default_factory=list)
    refused: list[RowError] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.subscriptions_added)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("errors", "refused")}
        out["errors"] = [e.__dict__ for e in self.errors]
        out["refused"] = [e.__dict__ for e in self.refused]
        return out


@dataclass
class Row:
    line: int
    email: str
    digest: str
    name: str
    organisation: str
    lists: list[int]
    attributes: dict[str, str]

    def merge(self, other: Row) -> None:
        """A later row for the same address: union of lists, later non-empty values win."""
        self.lists += [x for x in other.lists if x not in self.lists]
        self.name = other.name or self.name
        self.organisation = other.organisation or self.organisation
        self.attributes.update(other.attributes)


Marks = tuple[int, int, int]


def read_marks(batches: Iterator[dict[str, Row]], parsed: ImportReport) -> Iterator[tuple[dict[str, Row], Marks]]:
    """Each batch with how far the file had been read when it was cut (rows, merged, bad rows)."""
    for batch in batches:
        yield batch, (parsed.rows, parsed.merged, len(parsed.errors))


def catch_up(report: ImportReport, parsed: ImportReport, read: Marks) -> None:
    """Progress counts only what was written: the parse thread may be a batch ahead."""
    report.rows, report.merged = read[0], read[1]
    report.errors = parsed.errors[:read[2]]




def extra_lists(names: list[str], slugs: dict[str, int]) -> list[int]:
    unknown = [n for n in names if n not in slugs]
    if unknown:
        raise ContentError("no such list (run `bulletin lists sync`)", where=f"list {unknown[0]!r}")
    return [slugs[n] for n in names]


def batches(fh: TextIO, path: Path, slugs: dict[str, int], extra: list[int], report: ImportReport,
             size: int) -> Iterator[dict[str, Row]]:
    """Parsed, merged rows in batches keyed by address hash; bad rows go to the report."""
    reader = csv.DictReader(fh)
    reader.fieldnames = _header(reader.fieldnames or [], path)
    batch: dict[str, Row] = {}
    for record in _records(reader, report):
        # line_num is where the record ends; a quoted field may span lines, blank lines are skipped.
        start = reader.line_num - sum(str(v).count("\n") for v in record.values() if v)
        report.rows += 1
        row = _parse(record, start, slugs, extra, report)
        if row is None:
            continue
        if row.digest in batch:
            batch[row.digest].merge(row)
            report.merged += 1
        else:
            batch[row.digest] = row
        if len(batch) >= size:
            yield batch
            batch = {}
    if batch:
        yield batch


def _records(reader: csv.DictReader, report: ImportReport) -> Iterator[dict[str | Any, Any]]:  # type: ignore[type-arg]
    """The reader's records; a row the csv module cannot parse (a NUL byte, a giant field) is a bad row."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.rows += 1
            report.errors.append(RowError(reader.line_num + 1, f"unreadable CSV row: {exc}"))


CAPS = {"name": 200, "organisation": 200}
ATTRIBUTE_CAP = 1000


FORMULA_START = ("=", "+", "-", "@")


def _guarded(text: str) -> bool:
    """Starts, after any quotes, like a formula: such a cell gets one more quote on export.

    Counting the quotes already there keeps export and import each other's inverse, which
    matters for the email column: `'=x@example.org` is a valid address of its own.
    """
    return text.lstrip("'").startswith(FORMULA_START)


def escape_cell(text: str) -> str:
    """The exporter's formula guard: `=x` (and `+`, `-`, `@`) as `'=x`, which a spreadsheet shows as text.

    Names and addresses come from public signup forms; `=HYPERLINK(...)` must not run when
    staff open the export in Excel.
    """
    return "'" + text if _guarded(text) else text


def unescape_cell(value: str) -> str:
    """Undo `escape_cell`: `'=x` back to `=x`."""
    return value[1:] if value.startswith("'") and _guarded(value[1:]) else value


ALIASES = {"e-mail": "email", "email address": "email", "organization": "organisation", "list": "lists"}


def _header(names: list[str], path: Path) -> list[str]:
    """Known columns matched whatever their case ('Email', 'Organization'); others kept as written."""
    out = []
    for raw in names:
        name = (raw or "").strip()
        if not name or has_control_chars(name):
            raise ContentError("a column name is empty or holds control characters", where=f"{path}:1")
        canon = ALIASES.get(name.lower(), name.lower())
        out.append(canon if canon in KNOWN else name)
    if "email" not in out:
        raise ContentError("the header row needs an 'email' column", where=f"{path}:1")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise ContentError(f"column {dupes[0]!r} appears more than once", where=f"{path}:1")
    return out


def _parse(record: dict[str | Any, Any], line: int, slugs: dict[str, int], extra: list[int],
           report: ImportReport) -> Row | None:
    raw_email = unescape_cell((record.get("email") or "").strip(" "))
    if None in record:
        report.errors.append(RowError(line, "more fields than columns in the header", raw_email or None))
        return None
    try:
        email = normalise_address(raw_email)
    except AddressError as exc:
        report.errors.append(RowError(line, exc.message, raw_email or None))
        return None
    values = {k: unescape_cell((v or "").strip(" ")) for k, v in record.items()}  # CR/LF kept, to be rejected
    for key, value in values.items():
        if key != "lists" and bad_character(value, key) is not None:
            report.errors.append(RowError(line, f"field '{key}' {PROBLEM}", email))
            return None
    for key, value in values.items():
        cap = CAPS.get(key, ATTRIBUTE_CAP if key not in KNOWN else 0)
        if cap and len(value) > cap:
            report.errors.append(RowError(line, f"field '{key}' is longer than {cap} characters ({len(value)})", email))
            return None
    list_ids = list(extra)
    for slug in (s.strip().lower() for s in values.get("lists", "").split(";")):
        if not slug:
            continue
        if slug not in slugs:
            report.errors.append(RowError(line, f"no such list {slug!r}", email))
            return None
        if slugs[slug] not in list_ids:
            list_ids.append(slugs[slug])
    if not list_ids:
        report.errors.append(RowError(line, "no list given (fill the 'lists' column or pass --list)", email))
        return None
    attributes = {k: v for k, v in values.items() if k not in KNOWN and v}
    return Row(line, email, hash_normalised(email), values.get("name", ""),
               values.get("organisation", ""), list_ids, attributes)
