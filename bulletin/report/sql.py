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

from bulletin.sqlread import epoch as epoch_sql


class epoch(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """`epoch(column)`: seconds since 1970-01-01 UTC as an integer."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch"


@compiles(epoch, "sqlite")
@compiles(epoch, "postgresql")
def _epoch(element: epoch, compiler: Any, **kw: Any) -> str:
    """The driver-SQL spelling of `sqlread.epoch`, so Core statements and driver SQL agree to the second."""
    return epoch_sql(compiler.process(element.clauses, **kw), compiler.dialect.name)
