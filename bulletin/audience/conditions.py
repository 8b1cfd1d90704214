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
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, false, func, literal, not_, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from bulletin.errors import BulletinError

TEXT_FIELDS = ("email", "name", "organisation")
DATE_FIELDS = ("subscribed", "created")
KEYWORDS = {"and", "or", "not", "in", "contains", "starts", "with", "exists", "before", "after"}
_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
_FOLD = str.maketrans(_UPPER, _LOWER)


class ConditionError(BulletinError):
    """A condition that cannot be parsed; `column` is 1-based within the condition text."""

    exit_code = 2

    def __init__(self, message: str, column: int, *, where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.column = column


def fold(text: str) -> str:
    """ASCII-only lower case: what both databases do, see the module docstring (str.lower is the fast path)."""
    return text.lower() if text.isascii() else text.translate(_FOLD)


# Tokens ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # word, string, date, number, op, lparen, rparen, comma, end
    text: str
    pos: int  # 0-based offset in the condition


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w.-]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w-]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_.-]*)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<op>!=|=)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
""", re.VERBOSE)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch in "'\"":
                raise ConditionError("string is not closed", pos + 1)
            raise ConditionError(f"unexpected character {ch!r}", pos + 1)
        kind = m.lastgroup or ""
        if kind == "string":
            quote, body = m.group()[0], m.group()[1:-1]
            tokens.append(Token("string", re.sub(r"\\(.)", r"\1", body.replace(quote * 2, quote)), pos))
        elif kind != "space":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# Tree ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Compare:
    """One test of one field: op is =, !=, in, contains, starts, exists, before or after."""

    field: str
    op: str
    values: tuple[str, ...] = ()
    day: dt.date | None = None


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


Node = Compare | Not | AllOf | AnyOf


class _Parser:
    """expr := and ('or' and)* ; and := unary ('and' unary)* ; unary := 'not' unary | '(' expr ')' | test"""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() in words

    def take(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def fail(self, message: str, tok: Token | None = None) -> ConditionError:
        tok = tok or self.tok
        found = "the end" if tok.kind == "end" else repr(tok.text)
        return ConditionError(f"{message}, found {found}", tok.pos + 1)

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ConditionError("the condition is empty", 1)
        node = self.expr()
        if self.tok.kind != "end":
            raise self.fail("expected 'and', 'or' or the end")
        return node

    def expr(self) -> Node:
        items = [self.conjunction()]
        while self.is_word("or"):
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def conjunction(self) -> Node:
        items = [self.unary()]
        while self.is_word("and"):
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def unary(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Not(self.unary())
        if self.tok.kind == "lparen":
            self.take()
            node = self.expr()
            if self.tok.kind != "rparen":
                raise self.fail("expected ')'")
            self.take()
            return node
        return self.test()

    def test(self) -> Node:
        tok = self.tok
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            raise self.fail("expected a field name such as role or subscribed")
        self.take()
        name = tok.text.lower() if tok.text.lower() in TEXT_FIELDS + DATE_FIELDS else tok.text
        is_date = name in DATE_FIELDS
        op_tok = self.tok
        if self.is_word("before", "after"):
            if not is_date:
                raise ConditionError(f"'{op_tok.text}' compares dates: use it with {' or '.join(DATE_FIELDS)}",
                                     op_tok.pos + 1)
            self.take()
            return Compare(name, op_tok.text.lower(), day=self.date())
        if is_date:
            if self.is_word("exists"):
                self.take()
                return Compare(name, "exists")
            raise self.fail(f"{name} is a date: expected 'before' or 'after'")
        if op_tok.kind == "op":
            self.take()
            return Compare(name, op_tok.text, (self.value(),))
        if self.is_word("contains"):
            self.take()
            return Compare(name, "contains", (self.value(),))
        if self.is_word("starts"):
            self.take()
            if not self.is_word("with"):
                raise self.fail("expected 'with' after 'starts'")
            self.take()
            return Compare(name, "starts", (self.value(),))
        if self.is_word("exists"):
            self.take()
            return Compare(name, "exists")
        if self.is_word("in"):
            self.take()
            return Compare(name, "in", self.value_list())
        raise self.fail(f"expected =, !=, in, contains, starts with or exists after {tok.text!r}")

    def value(self) -> str:
        if self.tok.kind in ("string", "number", "date"):
            return self.take().text
        raise self.fail("expected a quoted value such as 'finance'")

    def value_list(self) -> tuple[str, ...]:
        if self.tok.kind != "lparen":
            raise self.fail("expected '(' to start the list of values")
        self.take()
        values = [self.value()]
        while self.tok.kind == "comma":
            self.take()
            values.append(self.value())
        if self.tok.kind != "rparen":
            raise self.fail("expected ',' or ')'")
        self.take()
        return tuple(values)

    def date(self) -> dt.date:
        tok = self.tok
        if tok.kind not in ("date", "string"):
            raise self.fail("expected a date such as 2026-01-01")
        self.take()
        try:
            return dt.date.fromisoformat(tok.text)
        except ValueError:
            raise ConditionError(f"not a date: {tok.text!r} (use YYYY-MM-DD)", tok.pos + 1) from None


@dataclass(frozen=True)
class Condition:
    """A parsed condition: its source text, tree, and the Python predicate compiled once."""

    source: str
    tree: Node
    _predicate: Callable[[Reader], bool] = field(repr=False, compare=False)

    def matches(self, reader: Reader) -> bool:
        return self._predicate(reader)

    def to_sql(self, columns: Columns) -> ColumnElement[bool]:
        return _sql(self.tree, columns)


def parse_condition(text: str) -> Condition:
    """Parse `text`; raises ConditionError with the 1-based column of the problem."""
    tree = _Parser(text).parse()
    return Condition(text, tree, _predicate(tree))


# Python ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reader:
    """One subscriber as conditions see them (`subscribed`: their subscription to the list in question)."""

    email: str = ""
    name: str = ""
    organisation: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    subscribed: dt.datetime | None = None
    created: dt.datetime | None = None


def _text_of(name: str) -> Callable[[Reader], str]:
    if name in TEXT_FIELDS:
        return lambda r: fold(getattr(r, name) or "")
    key = name.removeprefix("attributes.")

    def attribute(r: Reader) -> str:
        value = r.attributes.get(key)
        return "" if value is None else fold(value if isinstance(value, str) else _as_text(value))
    return attribute


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _combine(parts: list[Callable[[Reader], bool]], every: bool) -> Callable[[Reader], bool]:
    """Short-circuit and/or; pairs (the usual case) without a generator, which fill time notices."""
    if len(parts) == 2:
        a, b = parts
        return (lambda r: a(r) and b(r)) if every else (lambda r: a(r) or b(r))
    if every:
        return lambda r: all(p(r) for p in parts)
    return lambda r: any(p(r) for p in parts)


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _predicate(node: Node) -> Callable[[Reader], bool]:
    if isinstance(node, Not):
        inner = _predicate(node.item)
        return lambda r: not inner(r)
    if isinstance(node, AllOf | AnyOf):
        return _combine([_predicate(n) for n in node.items], isinstance(node, AllOf))
    if node.field in DATE_FIELDS:
        attr = node.field
        if node.op == "exists":
            return lambda r: getattr(r, attr) is not None
        limit = _start(node.day) if node.op == "before" else _start(node.day) + dt.timedelta(days=1)  # type: ignore[arg-type]
        if node.op == "before":
            return lambda r: (v := getattr(r, attr)) is not None and _aware(v) < limit
        return lambda r: (v := getattr(r, attr)) is not None and _aware(v) >= limit
    get = _text_of(node.field)
    values = tuple(fold(v) for v in node.values)
    first = values[0] if values else ""
    ops: dict[str, Callable[[Reader], bool]] = {
        "=": lambda r: get(r) == first,
        "!=": lambda r: get(r) != first,
        "in": lambda r: get(r) in values,
        "contains": lambda r: first in get(r),
        "starts": lambda r: get(r).startswith(first),
        "exists": lambda r: get(r) != "",
    }
    return ops[node.op]


# SQL -------------------------------------------------------------------------------------------

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
    return compiler.process(func.translate(arg, literal(_UPPER), literal(_LOWER)), **kw)


def _sql_text(name: str, columns: Columns) -> ColumnElement[str]:
    if name in TEXT_FIELDS:
        column = columns.text[name]
    else:
        column = columns.attributes[name.removeprefix("attributes.")].as_string()
    return ascii_lower(func.coalesce(column, ""))


def _sql(node: Node, columns: Columns) -> ColumnElement[bool]:
    if isinstance(node, Not):
        return not_(_sql(node.item, columns))
    if isinstance(node, AllOf):
        return and_(*(_sql(n, columns) for n in node.items))
    if isinstance(node, AnyOf):
        return or_(*(_sql(n, columns) for n in node.items))
    if node.field in DATE_FIELDS:
        col = columns.dates[node.field]
        if node.op == "exists":
            return col.is_not(None)
        if node.day is None:
            return false()
        if node.op == "before":
            return and_(col.is_not(None), col < _start(node.day))
        return and_(col.is_not(None), col >= _start(node.day) + dt.timedelta(days=1))
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
