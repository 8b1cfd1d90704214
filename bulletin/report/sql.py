"""The one SQL construct the two databases spell differently: a timestamp as Unix seconds.

Every time column holds UTC (naive text on SQLite, timestamp on PostgreSQL), so
whole seconds since the epoch let the database bucket a timeline with plain
integer arithmetic instead of shipping every row to Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class epoch(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """`epoch(column)`: seconds since 1970-01-01 UTC as an integer."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch, "postgresql")
def _epoch_postgresql(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"
