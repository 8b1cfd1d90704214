"""The SQL compilation of a condition: a SQLAlchemy expression, for segments to let the database choose the people.

It follows the rules in the docstring of `bulletin.audience.conditions`, as
`condition_match` does, so a block shown to a reader and a segment counting them
never disagree. Values are bound parameters, never SQL text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, false, func, literal, not_, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from bulletin.audience.condition_syntax import (
    ASCII_LOWER,
    ASCII_UPPER,
    DATE_FIELDS,
    TEXT_FIELDS,
    AllOf,
    AnyOf,
    Node,
    Not,
    day_start,
    fold,
)


@dataclass(frozen=True)
class Columns:
    """Where each field lives in the query the condition is added to."""

    text: Mapping[str, Any]  # email, name, organisation -> column
    attributes: Any  # the JSON column
    dates: Mapping[str, Any]  # subscribed, created -> column or expression


class ascii_lower(FunctionElement[str]):  # noqa: N801 - reads like the SQL function it stands for
    """lower() of ASCII letters only, identical on SQLite and PostgreSQL."""

    type = String()
    name = "ascii_lower"
    inherit_cache = True


@compiles(ascii_lower)
def _ascii_lower_default(element: ascii_lower, compiler: Any, **kw: Any) -> str:
    return compiler.process(func.lower(*element.clauses.clauses), **kw)  # SQLite: ASCII only


@compiles(ascii_lower, "postgresql")
def _ascii_lower_pg(element: ascii_lower, compiler: Any, **kw: Any) -> str:
    arg = element.clauses.clauses[0]
    return compiler.process(func.translate(arg, literal(ASCII_UPPER), literal(ASCII_LOWER)), **kw)


def _sql_text(name: str, columns: Columns) -> ColumnElement[str]:
    if name in TEXT_FIELDS:
        column = columns.text[name]
    else:
        column = columns.attributes[name.removeprefix("attributes.")].as_string()
    return ascii_lower(func.coalesce(column, ""))


def sql_expression(node: Node, columns: Columns) -> ColumnElement[bool]:
    if isinstance(node, Not):
        return not_(sql_expression(node.item, columns))
    if isinstance(node, AllOf):
        return and_(*(sql_expression(n, columns) for n in node.items))
    if isinstance(node, AnyOf):
        return or_(*(sql_expression(n, columns) for n in node.items))
    if node.field in DATE_FIELDS:
        col = columns.dates[node.field]
        if node.op == "exists":
            return col.is_not(None)
        if node.day is None:
            return false()
        if node.op == "before":
            return and_(col.is_not(None), col < day_start(node.day))
        return and_(col.is_not(None), col >= day_start(node.day) + dt.timedelta(days=1))
    value = _sql_text(node.field, columns)
    folded = [fold(v) for v in node.values]
    if node.op == "=":
        return value == folded[0]
    if node.op == "!=":
        return value != folded[0]
    if node.op == "in":
        return value.in_(folded)
    if node.op == "contains":
        return value.contains(folded[0], autoescape=True)
    if node.op == "starts":
        return value.startswith(folded[0], autoescape=True)
    return value != ""
