"""A condition's text and its tree: the tokenizer, the recursive-descent parser, and what both compilations share.

The rules the tree means are in the docstring of `bulletin.audience.conditions`;
`condition_match` and `condition_sql` compile the tree to a Python predicate and
a SQL expression. The field names, the ASCII fold and the start of a day live
here so that both compilations read the one definition.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bulletin.errors import BulletinError

TEXT_FIELDS = ("email", "name", "organisation")
DATE_FIELDS = ("subscribed", "created")
KEYWORDS = {"and", "or", "not", "in", "contains", "starts", "with", "exists", "before", "after"}
ASCII_UPPER, ASCII_LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
_FOLD = str.maketrans(ASCII_UPPER, ASCII_LOWER)


class ConditionError(BulletinError):
    """A condition that cannot be parsed; `column` is 1-based within the condition text."""

    exit_code = 2

    def __init__(self, message: str, column: int, *, where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.column = column


def fold(text: str) -> str:
    """ASCII-only lower case: what both databases do, see the rules in conditions.py (str.lower is the fast path)."""
    return text.lower() if text.isascii() else text.translate(_FOLD)


def day_start(day: dt.date) -> dt.datetime:
    """The start of day D (UTC): `before D` ends there and `after D` begins a day later."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


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

