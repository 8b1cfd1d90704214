"""The condition language of segments and targeted blocks.

    role contains 'finance' and not region in ('north', 'east')
    organisation starts with 'Riverside' or subscribed before 2026-01-01

A hand-written tokenizer and recursive-descent parser turn the text into a
small tree; the tree compiles to a SQLAlchemy expression (segments: the
database chooses the people) and to a Python predicate (targeted blocks: fill
chooses the blocks per recipient). Both compilations follow one definition, so
a block shown to a reader and a segment counting them never disagree:

- every value is text; a missing field or attribute is the empty string;
- text comparisons ignore ASCII case (SQLite's lower() folds only ASCII, so
  PostgreSQL uses translate() over A-Z to do exactly the same);
- `before D` means earlier than the start of day D (UTC), `after D` means from
  the day after D; a person without that date matches neither.

User text never becomes SQL: values are bound parameters and field names are
checked against a pattern, so quotes and semicolons stay literal.

Where each part lives (this module ties them together and is what the rest of
bulletin imports): `condition_syntax` (the tokenizer, the tree, the parser and
the definitions both compilations share), `condition_match` (the Python
predicate, `Reader`) and `condition_sql` (the SQL expression, `Columns`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.sql.elements import ColumnElement

from bulletin.audience.condition_match import Reader, predicate
from bulletin.audience.condition_sql import Columns, ascii_lower, sql_expression
from bulletin.audience.condition_syntax import (
    DATE_FIELDS,
    KEYWORDS,
    TEXT_FIELDS,
    AllOf,
    AnyOf,
    Compare,
    ConditionError,
    Node,
    Not,
    Token,
    _Parser,
    fold,
    tokenize,
)

__all__ = ["DATE_FIELDS", "KEYWORDS", "TEXT_FIELDS", "AllOf", "AnyOf", "Columns", "Compare", "Condition",
           "ConditionError", "Node", "Not", "Reader", "Token", "ascii_lower", "fold", "parse_condition", "tokenize"]


@dataclass(frozen=True)
class Condition:
    """A parsed condition: its source text, tree, and the Python predicate compiled once."""

    source: str
    tree: Node
    _predicate: Callable[[Reader], bool] = field(repr=False, compare=False)

    def matches(self, reader: Reader) -> bool:
        return self._predicate(reader)

    def to_sql(self, columns: Columns) -> ColumnElement[bool]:
        return sql_expression(self.tree, columns)


def parse_condition(text: str) -> Condition:
    """Parse `text`; raises ConditionError with the 1-based column of the problem."""
    tree = _Parser(text).parse()
    return Condition(text, tree, predicate(tree))
