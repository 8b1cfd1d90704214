"""COPY text built by bulletin.pgcopy reads back, through a real PostgreSQL COPY, as the values it was given."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from bulletin import pgcopy

AWKWARD = ["plain", "tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "", "Zoë Ørsted 名前", "{x,y}",
           '"quoted"', "NULL", " spaced ", "trailing\\"]


@pytest.fixture
def pg(_pg_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(_pg_database.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("CREATE TEMP TABLE t (i bigint, s text, b boolean, at timestamptz, j json, p text)")
        yield conn


def test_a_block_of_every_kind_of_column_reads_back_exactly(pg: psycopg.Connection) -> None:
    at = datetime(2026, 11, 28, 8, 3, 12, 500954, tzinfo=UTC)
    n = len(AWKWARD)
    ids = list(range(n))
    ids[3] = None  # a NULL in an int column takes the value-by-value path
    plain = [f"r{i}@example.org" for i in range(n)]  # nothing to escape: the column goes as it is
    columns = [ids, AWKWARD, [True] * (n - 1) + [False], [at] * n, ['{"k": "v\\u00e9"}'] * (n - 1) + [None], plain]
    with pg.cursor().copy("COPY t (i, s, b, at, j, p) FROM STDIN") as copy:
        copy.write(pgcopy.block(columns))
    rows = pg.execute("SELECT i, s, b, at, j::text, p FROM t ORDER BY s").fetchall()
    expected = sorted(zip(*columns, strict=True), key=lambda r: r[1])
    assert rows == [tuple(r) for r in expected]


def test_an_empty_block_is_empty_and_an_unknown_type_is_refused() -> None:
    assert pgcopy.block([[], []]) == ""
    with pytest.raises(TypeError, match="no COPY text form for object"):
        pgcopy.block([[object()]])


def test_array_literals_of_awkward_text_and_of_ints_read_back(pg: psycopg.Connection) -> None:
    (texts,) = pg.execute("SELECT %s::text[]", (pgcopy.array_literal(AWKWARD),)).fetchone()  # type: ignore[misc]
    assert texts == AWKWARD
    (ints,) = pg.execute("SELECT %s::bigint[]", (pgcopy.array_literal([3, 1, 2]),)).fetchone()  # type: ignore[misc]
    assert ints == [3, 1, 2]
    (empty,) = pg.execute("SELECT %s::text[]", (pgcopy.array_literal([]),)).fetchone()  # type: ignore[misc]
    assert empty == []


def test_one_text_value_reads_back_exactly_whether_or_not_it_needs_escaping(pg: psycopg.Connection) -> None:
    """`field` (the import's row-at-a-time path) leaves text without the four special characters
    as it is and escapes the rest; either way the server reads back the value written."""
    values = [*AWKWARD, "r1@example.org", "plain name", ""]
    text = "".join(f"{i}\t{pgcopy.field(v)}\n" for i, v in enumerate(values))
    assert pgcopy.field("r1@example.org") == "r1@example.org"
    with pg.cursor().copy("COPY t (i, s) FROM STDIN") as copy:
        copy.write(text)
    assert [s for (s,) in pg.execute("SELECT s FROM t ORDER BY i").fetchall()] == values
