"""Opening a subscriber CSV: the right encoding, or one clear line saying where it is wrong.

Council exports arrive as UTF-8 (with or without a BOM), as Excel's "Unicode
text" (UTF-16 with a BOM) or in latin-1/cp1252. A BOM settles it; without one the
file must be UTF-8 unless `--encoding` says otherwise, and a file that is not is
refused naming its first bad byte's line, instead of importing mojibake names.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import TextIO

from bulletin.errors import ContentError

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CHUNK = 1 << 20


def open_csv(path: Path, encoding: str | None = None) -> TextIO:
    """The file as text for `csv`; ContentError naming the file (and line) when it cannot be read."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ContentError(f"cannot read: {exc.strerror}", where=str(path)) from None
    if encoding is None:
        encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    if encoding is None:
        first_bad_line(path, "utf-8")
        encoding = "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ContentError(f"unknown encoding {encoding!r} (try utf-8, latin-1, cp1252 or utf-16)",
                           where=str(path)) from None
    return path.open(newline="", encoding=encoding)


def first_bad_line(path: Path, encoding: str) -> None:
    """Decode the whole file once (fast: no parsing); ContentError at the line of the first bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = chunk[exc.start:exc.start + 1]
                line += chunk[:exc.start].count(b"\n")
                raise ContentError(
                    f"not {encoding.upper()}: byte 0x{bad.hex()} cannot be read; save the file as UTF-8 or pass "
                    "--encoding with its encoding (e.g. latin-1, cp1252)", where=f"{path}:{line}") from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ContentError(f"not {encoding.upper()}: the file ends inside a character",
                               where=f"{path}:{line}") from None


def decode_error(path: Path, exc: UnicodeDecodeError) -> ContentError:
    """A decoding failure met while importing with an explicit `--encoding`."""
    return ContentError(f"cannot be read as {exc.encoding}: {exc.reason}", where=str(path))



