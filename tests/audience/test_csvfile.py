"""Subscriber CSVs in the encodings councils export, field caps, and rows the csv module cannot parse."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from sqlmodel import select

from bulletin.audience.importer import import_csv
from bulletin.db import session_scope
from bulletin.errors import ContentError
from bulletin.models import Subscriber

ROWS = ("email,name,organisation,lists\n"
        "ana@example.org,Ana Núñez,Ayuntamiento,shared-services\n"
        "zoe@example.org,Zoë Brontë,Café Society,shared-services\n")


def _names(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return {e: n for e, n in s.exec(select(Subscriber.email, Subscriber.name)).all()}


def test_latin1_without_encoding_is_refused_at_the_line_of_the_first_bad_byte(engine, lists, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(ROWS.encode("latin-1"))
    with pytest.raises(ContentError) as err:
        import_csv(engine, path, actor="test")
    assert str(err.value).startswith(f"{path}:2: not UTF-8: byte 0xfa")
    assert "--encoding" in str(err.value) and _names(engine) == {}


def test_latin1_with_encoding_reads_the_names_correctly(engine, lists, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(ROWS.encode("latin-1"))
    report = import_csv(engine, path, actor="test", encoding="latin-1")
    assert report.created == 2 and not report.errors
    assert _names(engine) == {"ana@example.org": "Ana Núñez", "zoe@example.org": "Zoë Brontë"}


@pytest.mark.parametrize("bom,codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
                                       (codecs.BOM_UTF8, "utf-8")])
def test_a_bom_decides_the_encoding(engine, lists, tmp_path: Path, bom: bytes, codec: str) -> None:
    path = tmp_path / "unicode.csv"
    path.write_bytes(bom + ROWS.replace("\n", "\r\n").encode(codec))
    report = import_csv(engine, path, actor="test")
    assert report.created == 2 and not report.errors
    assert _names(engine) == {"ana@example.org": "Ana Núñez", "zoe@example.org": "Zoë Brontë"}


def test_an_unknown_encoding_is_a_one_line_error(engine, lists, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(ROWS)
    with pytest.raises(ContentError, match="unknown encoding 'klingon'"):
        import_csv(engine, path, actor="test", encoding="klingon")


def test_overlong_fields_and_unparsable_rows_are_bad_rows_and_later_rows_still_go_in(engine, lists,
                                                                                     tmp_path: Path) -> None:
    big = "x" * 200_000  # beyond the csv module's field limit
    path = tmp_path / "caps.csv"
    path.write_text(
        "email,name,organisation,lists,note\n"
        f"a@example.org,{'N' * 201},,shared-services,\n"           # line 2: name cap
        f"b@example.org,B,{'O' * 201},shared-services,\n"          # line 3: organisation cap
        f"c@example.org,C,,shared-services,{'v' * 1001}\n"         # line 4: attribute cap
        "d@example.org,D\0,,shared-services,\n"                    # line 5: NUL byte
        f"e@example.org,E,,shared-services,\"{big}\"\n"            # line 6: giant field
        f"f@example.org,{'F' * 200},{'G' * 200},shared-services,{'w' * 1000}\n",  # line 7: at the caps: fine
        encoding="utf-8")
    report = import_csv(engine, path, actor="test")
    bad = {e.line: e.reason for e in report.errors}
    assert set(bad) == {2, 3, 4, 5, 6}
    assert "'name' is longer than 200" in bad[2] and "'organisation' is longer than 200" in bad[3]
    assert "'note' is longer than 1000" in bad[4] and "control or invisible" in bad[5]
    assert "unreadable CSV row: field larger than field limit" in bad[6]
    assert set(_names(engine)) == {"f@example.org"} and report.created == 1
