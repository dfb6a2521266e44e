"""A small SoQL: tokenizer, recursive-descent parser, type checker and evaluator, enough for the sandbox's
Socrata imitation. Pure: no I/O, no clock.

The statement grammar (keywords case-insensitive, column names as written):

    statement  := SELECT items [WHERE expr] [GROUP BY expr {, expr}] [HAVING expr]
                  [ORDER BY expr [ASC|DESC] {, ...}] [LIMIT int] [OFFSET int]
    items      := item {, item}          item := * | :* | expr [AS name]
    expr       := and {OR and}           and  := not {AND not}          not := NOT not | predicate
    predicate  := value [cmp value | [NOT] IN (value {, value}) | [NOT] LIKE value
                  | [NOT] BETWEEN value AND value | IS [NOT] NULL]
    value      := atom {:: type}         cmp  := = | != | <> | < | <= | > | >=
    atom       := 'text' | number | TRUE | FALSE | NULL | name | :system_field | func(args) | (expr)

Functions: `count(*)`, `count(x)`, `min(x)`, `max(x)`, `sum(x)` (numbers), `upper(x)`, `lower(x)`;
casts `::number`, `::text`. What a client may rely on:
- Errors come as `SoqlError` with Socrata's codes: a statement that does not parse is
  `query.compiler.malformed` (the message names line and character of the offending token, or of the end
  of input); a column, function or type problem is `query.soql.no-such-column`, `no-such-function`,
  `type-mismatch`, `column-not-in-group-bys`, `aggregate-in-ungrouped-context` or `duplicate-alias`, with
  `position` (row = line, column) of the offending token.
- Comparisons are typed, as Socrata's are: a text column compares with text only (`dot_number = 1` is a
  type mismatch), and text compares as text (so `'02-SEP-25' < '15-JAN-24'`); `:created_at` and
  `:updated_at` are fixed timestamps, compared as instants with a text literal read as ISO 8601.
- Three-valued logic: a missing key is null, a comparison with null is null, and only true rows pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

TEXT, NUMBER, BOOLEAN, TIMESTAMP, NULL = "text", "number", "boolean", "fixed_timestamp", "null"

KEYWORDS = frozenset(
    {
        "select", "where", "group", "by", "having", "order", "limit", "offset", "and", "or", "not", "in",
        "like", "between", "is", "null", "as", "asc", "desc", "true", "false",
    }
)  # fmt: skip
AGGREGATES = frozenset({"count", "min", "max", "sum"})
SCALARS = frozenset({"upper", "lower"})
CASTS = frozenset({NUMBER, TEXT})
COMPARISONS = {"=": "$eq", "!=": "$neq", "<>": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


# --- errors -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    row: int
    column: int


class SoqlError(Exception):
    """A query Socrata would refuse with 400: `code` is its error code, `position` where it points."""

    def __init__(self, code: str, message: str, position: Position, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.data = data


def _malformed(statement: str, position: Position, reason: str) -> SoqlError:
    return SoqlError(
        "query.compiler.malformed",
        f'Could not parse SoQL query "{statement}" at line {position.row} character {position.column}: '
        f"{reason}",
        position,
    )


# --- tokens -----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>'(?:[^']|'')*')
      | (?P<number>-?(?:\d+(?:\.\d*)?|\.\d+))
      | (?P<system>:\*|:[A-Za-z_][A-Za-z0-9_@]*)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>::|<=|>=|<>|!=|[=<>(),*])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string, number, system, name, op, end
    text: str
    at: Position

    @property
    def word(self) -> str:
        """The lower-cased text of a name token (keywords are case-insensitive), else ''."""
        return self.text.lower() if self.kind == "name" else ""

    def describe(self) -> str:
        return "end of input" if self.kind == "end" else f"`{self.text}'"


def _position(text: str, offset: int) -> Position:
    line = text.count("\n", 0, offset) + 1
    return Position(line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def tokenize(statement: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(statement):
        found = _TOKEN.match(statement, at)
        if found is None or found.lastgroup is None:
            here = _position(statement, at)
            if statement[at] == "'":
                raise _malformed(statement, here, "Unterminated string")
            raise _malformed(statement, here, f"Unexpected character `{statement[at]}'")
        if found.lastgroup != "space":
            tokens.append(Token(found.lastgroup, found.group(), _position(statement, at)))
        at = found.end()
    tokens.append(Token("end", "", _position(statement, len(statement.rstrip()))))
    return tokens


# --- syntax tree (positions are left out of equality, so `GROUP BY x` matches `SELECT x`) -----------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | Decimal | bool | None
    type: str
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    star: bool  # count(*)
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Cast:
    operand: Expr
    type: str
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # one of COMPARISONS
    left: Expr
    right: Expr
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and", "or"
    left: Expr
    right: Expr
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class In:
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Like:
    operand: Expr
    pattern: Expr
    negated: bool
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Between:
    operand: Expr
    low: Expr
    high: Expr
    negated: bool
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expr
    negated: bool
    at: Position = field(compare=False)


Expr = Literal | Column | Call | Cast | Compare | Logic | Not | In | Like | Between | IsNull


@dataclass(frozen=True, slots=True)
class Star:
    system: bool  # `:*` (the system fields) rather than `*` (the dataset's columns)
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Item:
    expr: Expr
    alias: str | None
    at: Position = field(compare=False)


@dataclass(frozen=True, slots=True)
class Statement:
    select: tuple[Item | Star, ...]
    where: Expr | None = None
    group: tuple[Expr, ...] = ()
    having: Expr | None = None
    order: tuple[tuple[Expr, bool], ...] = ()  # (key, descending)
    limit: int | None = None
    offset: int | None = None


# --- parser -----------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, statement: str) -> None:
        self.statement = statement
        self.tokens = tokenize(statement)
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def error(self, expected: str) -> SoqlError:
        return _malformed(
            self.statement, self.token.at, f"Expected {expected}, but got {self.token.describe()}"
        )

    def at_word(self, *words: str) -> bool:
        return self.token.word in words

    def take_word(self, word: str) -> bool:
        if self.token.word == word:
            self.advance()
            return True
        return False

    def expect_word(self, word: str) -> Token:
        if self.token.word != word:
            raise self.error(f"`{word.upper()}'")
        return self.advance()

    def take_op(self, op: str) -> bool:
        if self.token.kind == "op" and self.token.text == op:
            self.advance()
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.take_op(op):
            raise self.error(f"`{op}'")

    # statement

    def statement_(self) -> Statement:
        self.expect_word("select")
        select = self.items()
        where = self.expr() if self.take_word("where") else None
        group: tuple[Expr, ...] = ()
        if self.take_word("group"):
            self.expect_word("by")
            group = tuple(self.comma_list(self.expr))
        having = self.expr() if self.take_word("having") else None
        order: tuple[tuple[Expr, bool], ...] = ()
        if self.take_word("order"):
            self.expect_word("by")
            order = tuple(self.comma_list(self.order_key))
        limit = self.count() if self.take_word("limit") else None
        offset = self.count() if self.take_word("offset") else None
        if self.token.kind != "end":
            raise self.error("an operator, the next clause or the end of input")
        return Statement(select, where, group, having, order, limit, offset)

    def comma_list(self, parse: Callable[[], Any]) -> list[Any]:
        found = [parse()]
        while self.take_op(","):
            found.append(parse())
        return found

    def items(self) -> tuple[Item | Star, ...]:
        return tuple(self.comma_list(self.item))

    def item(self) -> Item | Star:
        token = self.token
        if self.take_op("*"):
            return Star(system=False, at=token.at)
        if token.kind == "system" and token.text == ":*":
            self.advance()
            return Star(system=True, at=token.at)
        expr = self.expr()
        alias = None
        if self.take_word("as"):
            name = self.token
            if name.kind != "name" or name.word in KEYWORDS:
                raise self.error("an alias")
            alias = self.advance().text
        return Item(expr, alias, token.at)

    def order_key(self) -> tuple[Expr, bool]:
        key = self.expr()
        if self.take_word("desc"):
            return key, True
        self.take_word("asc")
        return key, False

    def count(self) -> int:
        token = self.token
        if token.kind != "number" or not token.text.isdigit():
            raise self.error("a non-negative integer")
        self.advance()
        return int(token.text)

    # expressions, lowest precedence first

    def expr(self) -> Expr:
        left = self.conjunction()
        while self.at_word("or"):
            at = self.advance().at
            left = Logic("or", left, self.conjunction(), at)
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.at_word("and"):
            at = self.advance().at
            left = Logic("and", left, self.negation(), at)
        return left

    def negation(self) -> Expr:
        if self.at_word("not"):
            at = self.advance().at
            return Not(self.negation(), at)
        return self.predicate()

    def predicate(self) -> Expr:
        left = self.value()
        token = self.token
        if token.kind == "op" and token.text in COMPARISONS:
            self.advance()
            return Compare(token.text, left, self.value(), token.at)
        if self.take_word("is"):
            negated = self.take_word("not")
            self.expect_word("null")
            return IsNull(left, negated, token.at)
        negated = self.take_word("not")
        if self.take_word("in"):
            self.expect_op("(")
            items = tuple(self.comma_list(self.value))
            self.expect_op(")")
            return In(left, items, negated, token.at)
        if self.take_word("like"):
            return Like(left, self.value(), negated, token.at)
        if self.take_word("between"):
            low = self.value()
            self.expect_word("and")
            return Between(left, low, self.value(), negated, token.at)
        if negated:
            raise self.error("`IN', `LIKE' or `BETWEEN'")
        return left

    def value(self) -> Expr:
        operand = self.atom()
        while self.token.kind == "op" and self.token.text == "::":
            at = self.advance().at
            kind = self.token
            if kind.word not in CASTS:
                raise self.error("a type (number, text)")
            self.advance()
            operand = Cast(operand, kind.word, at)
        return operand

    def atom(self) -> Expr:
        token = self.token
        if token.kind == "string":
            self.advance()
            return Literal(token.text[1:-1].replace("''", "'"), TEXT, token.at)
        if token.kind == "number":
            self.advance()
            return Literal(Decimal(token.text), NUMBER, token.at)
        if token.kind == "system" and token.text != ":*":
            self.advance()
            return Column(token.text, token.at)
        if token.kind == "op" and token.text == "(":
            self.advance()
            inner = self.expr()
            self.expect_op(")")
            return inner
        if token.kind == "name":
            word = token.word
            if word in ("true", "false"):
                self.advance()
                return Literal(word == "true", BOOLEAN, token.at)
            if word == "null":
                self.advance()
                return Literal(None, NULL, token.at)
            if word in KEYWORDS:
                raise self.error("an expression")
            self.advance()
            if self.take_op("("):
                return self.call(token)
            return Column(token.text, token.at)
        raise self.error("an expression")

    def call(self, name: Token) -> Call:
        if self.take_op("*"):
            self.expect_op(")")
            return Call(name.word, (), True, name.at)
        if self.take_op(")"):
            return Call(name.word, (), False, name.at)
        args = tuple(self.comma_list(self.expr))
        self.expect_op(")")
        return Call(name.word, args, False, name.at)


@lru_cache(maxsize=4096)
def parse(statement: str) -> Statement:
    """The syntax tree of one SoQL statement, or `SoqlError` (`query.compiler.malformed`)."""
    return _Parser(statement).statement_()


# --- types ------------------------------------------------------------------------------------------------


def _type_mismatch(op: str, types: Sequence[str], at: Position) -> SoqlError:
    shown = ", ".join(types)
    return SoqlError(
        "query.soql.type-mismatch",
        f"Type mismatch for {op}, is {shown}; position: line {at.row}, column {at.column}",
        at,
        name=op,
        types=list(types),
    )


def _comparable(left: str, right: str) -> bool:
    if NULL in (left, right) or left == right:
        return True
    return {left, right} == {TIMESTAMP, TEXT}  # a text literal reads as a timestamp


class Checker:
    """Types expressions against a dataset's columns (`{field name: type}`) and an alias scope."""

    def __init__(self, columns: Mapping[str, str], aliases: Mapping[str, str] | None = None) -> None:
        self.columns = columns
        self.aliases = dict(aliases or {})

    def type_of(self, expr: Expr, *, aggregates: bool) -> str:
        match expr:
            case Literal(type=kind):
                return kind
            case Column(name=name, at=at):
                if name in self.columns:
                    return self.columns[name]
                if name in self.aliases:
                    return self.aliases[name]
                raise SoqlError("query.soql.no-such-column", f"No such column: {name}", at, column=name)
            case Call(name=name, args=args, star=star, at=at):
                return self._call(name, args, star, at, aggregates=aggregates)
            case Cast(operand=operand, type=kind):
                self.type_of(operand, aggregates=aggregates)
                return kind
            case Compare(op=op, left=left, right=right, at=at):
                types = (
                    self.type_of(left, aggregates=aggregates),
                    self.type_of(right, aggregates=aggregates),
                )
                ordered = op not in ("=", "!=", "<>")
                if not _comparable(*types) or (ordered and BOOLEAN in types):
                    raise _type_mismatch(f"op{COMPARISONS[op]}", types, at)
                return BOOLEAN
            case Logic(op=op, left=left, right=right, at=at):
                types = (
                    self.type_of(left, aggregates=aggregates),
                    self.type_of(right, aggregates=aggregates),
                )
                if any(kind not in (BOOLEAN, NULL) for kind in types):
                    raise _type_mismatch(f"op${op}", types, at)
                return BOOLEAN
            case Not(operand=operand, at=at):
                kind = self.type_of(operand, aggregates=aggregates)
                if kind not in (BOOLEAN, NULL):
                    raise _type_mismatch("op$not", (kind,), at)
                return BOOLEAN
            case In(operand=operand, items=items, at=at):
                kind = self.type_of(operand, aggregates=aggregates)
                for item in items:
                    other = self.type_of(item, aggregates=aggregates)
                    if not _comparable(kind, other):
                        raise _type_mismatch("op$in", (kind, other), item.at)
                return BOOLEAN
            case Like(operand=operand, pattern=pattern, at=at):
                types = (
                    self.type_of(operand, aggregates=aggregates),
                    self.type_of(pattern, aggregates=aggregates),
                )
                if any(kind not in (TEXT, NULL) for kind in types):
                    raise _type_mismatch("op$like", types, at)
                return BOOLEAN
            case Between(operand=operand, low=low, high=high, at=at):
                kind = self.type_of(operand, aggregates=aggregates)
                for bound in (low, high):
                    other = self.type_of(bound, aggregates=aggregates)
                    if not _comparable(kind, other) or BOOLEAN in (kind, other):
                        raise _type_mismatch("op$between", (kind, other), bound.at)
                return BOOLEAN
            case IsNull(operand=operand):
                self.type_of(operand, aggregates=aggregates)
                return BOOLEAN
        raise AssertionError(expr)  # pragma: no cover

    def _call(self, name: str, args: tuple[Expr, ...], star: bool, at: Position, *, aggregates: bool) -> str:
        arity = 1
        if name not in AGGREGATES | SCALARS or (star and name != "count") or (not star and len(args) != 1):
            arity = 1 if star else len(args)
            raise SoqlError(
                "query.soql.no-such-function",
                f"No such function: {name}/{arity}",
                at,
                name=name,
                arity=arity,
            )
        if name in AGGREGATES:
            if not aggregates:
                raise SoqlError(
                    "query.soql.aggregate-in-ungrouped-context",
                    f"Aggregate function {name} used where no aggregate is allowed",
                    at,
                    function=name,
                )
            if star:
                return NUMBER
            kind = self.type_of(args[0], aggregates=False)
            if name == "count":
                return NUMBER
            if name == "sum" and kind != NUMBER:
                raise _type_mismatch("sum", (kind,), at)
            return kind
        kind = self.type_of(args[0], aggregates=aggregates)
        if kind not in (TEXT, NULL):
            raise _type_mismatch(name, (kind,), at)
        return TEXT


def has_aggregate(expr: Expr) -> bool:
    match expr:
        case Call(name=name, args=args):
            return name in AGGREGATES or any(has_aggregate(arg) for arg in args)
        case Cast(operand=operand) | Not(operand=operand) | IsNull(operand=operand):
            return has_aggregate(operand)
        case Compare(left=left, right=right) | Logic(left=left, right=right):
            return has_aggregate(left) or has_aggregate(right)
        case In(operand=operand, items=items):
            return has_aggregate(operand) or any(has_aggregate(item) for item in items)
        case Like(operand=operand, pattern=pattern):
            return has_aggregate(operand) or has_aggregate(pattern)
        case Between(operand=operand, low=low, high=high):
            return any(has_aggregate(part) for part in (operand, low, high))
    return False


def ungrouped_column(expr: Expr, group: Iterable[Expr]) -> Column | None:
    """The first column of `expr` outside an aggregate and outside every GROUP BY expression, if any."""
    keys = tuple(group)
    if expr in keys:
        return None
    match expr:
        case Column():
            return expr
        case Call(name=name, args=args):
            if name in AGGREGATES:
                return None
            return next((c for a in args if (c := ungrouped_column(a, keys)) is not None), None)
        case Cast(operand=operand) | Not(operand=operand) | IsNull(operand=operand):
            return ungrouped_column(operand, keys)
        case Compare(left=left, right=right) | Logic(left=left, right=right):
            return ungrouped_column(left, keys) or ungrouped_column(right, keys)
        case In(operand=operand, items=items):
            parts: tuple[Expr, ...] = (operand, *items)
            return next((c for p in parts if (c := ungrouped_column(p, keys)) is not None), None)
        case Like(operand=operand, pattern=pattern):
            return ungrouped_column(operand, keys) or ungrouped_column(pattern, keys)
        case Between(operand=operand, low=low, high=high):
            return next(
                (c for p in (operand, low, high) if (c := ungrouped_column(p, keys)) is not None), None
            )
    return None


def not_in_group_bys(column: Column) -> SoqlError:
    return SoqlError(
        "query.soql.column-not-in-group-bys",
        f"Column not in group bys: {column.name}",
        column.at,
        column=column.name,
    )


def default_name(expr: Expr) -> str:
    """The output name Socrata gives an unaliased selection: the column, `count`, `max_insp_date`..."""
    match expr:
        case Column(name=name):
            return name
        case Call(name=name, star=True):
            return name
        case Call(name=name, args=(Column(name=column),)):
            return f"{name}_{column.lstrip(':')}"
        case Cast(operand=operand):
            return default_name(operand)
    return "expr"


# --- evaluation -------------------------------------------------------------------------------------------

Value = str | Decimal | bool | datetime | None
Row = Mapping[str, Value]


def timestamp(text: str) -> datetime | None:
    """A text literal read as a fixed timestamp (ISO 8601, `Z` or no zone meaning UTC), or None."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _align(left: Value, right: Value) -> tuple[Any, Any] | None:
    if left is None or right is None:
        return None
    if isinstance(left, datetime) and isinstance(right, str):
        moment = timestamp(right)
        return None if moment is None else (left, moment)
    if isinstance(right, datetime) and isinstance(left, str):
        moment = timestamp(left)
        return None if moment is None else (moment, right)
    return left, right


def _compare(op: str, left: Value, right: Value) -> bool | None:
    pair = _align(left, right)
    if pair is None:
        return None
    a, b = pair
    match op:
        case "=":
            return bool(a == b)
        case "!=" | "<>":
            return bool(a != b)
        case "<":
            return bool(a < b)
        case "<=":
            return bool(a <= b)
        case ">":
            return bool(a > b)
        case _:
            return bool(a >= b)


@lru_cache(maxsize=1024)
def _like(pattern: str) -> re.Pattern[str]:
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _number(value: Value) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _aggregate(name: str, star: bool, args: tuple[Expr, ...], group: Sequence[Row]) -> Value:
    if star:
        return Decimal(len(group))
    values = [v for row in group if (v := evaluate(args[0], row)) is not None]
    if name == "count":
        return Decimal(len(values))
    if not values:
        return None
    if name == "sum":
        return sum((v for v in values if isinstance(v, Decimal)), Decimal(0))
    return min(values) if name == "min" else max(values)


def evaluate(expr: Expr, row: Row, group: Sequence[Row] = ()) -> Value:
    """The value of a (type-checked) expression on a row; aggregates read `group`, the row's group."""
    match expr:
        case Literal(value=literal):
            return literal
        case Column(name=name):
            return row.get(name)
        case Call(name=name, args=args, star=star):
            if name in AGGREGATES:
                return _aggregate(name, star, args, group)
            text = evaluate(args[0], row, group)
            if not isinstance(text, str):
                return None
            return text.upper() if name == "upper" else text.lower()
        case Cast(operand=operand, type=kind):
            value = evaluate(operand, row, group)
            if kind == NUMBER:
                return _number(value)
            return None if value is None else _text(value)
        case Compare(op=op, left=left, right=right):
            return _compare(op, evaluate(left, row, group), evaluate(right, row, group))
        case Logic(op=op, left=left, right=right):
            a, b = evaluate(left, row, group), evaluate(right, row, group)
            if op == "and":
                return False if a is False or b is False else None if a is None or b is None else True
            return True if a is True or b is True else None if a is None or b is None else False
        case Not(operand=operand):
            value = evaluate(operand, row, group)
            return None if value is None else not value
        case In(operand=operand, items=items, negated=negated):
            value = evaluate(operand, row, group)
            found = [_compare("=", value, evaluate(item, row, group)) for item in items]
            result = True if True in found else None if None in found else False
            return None if result is None else result != negated
        case Like(operand=operand, pattern=pattern, negated=negated):
            value, text = evaluate(operand, row, group), evaluate(pattern, row, group)
            if not isinstance(value, str) or not isinstance(text, str):
                return None
            return (_like(text).fullmatch(value) is not None) != negated
        case Between(operand=operand, low=low, high=high, negated=negated):
            value = evaluate(operand, row, group)
            above = _compare(">=", value, evaluate(low, row, group))
            below = _compare("<=", value, evaluate(high, row, group))
            if above is None or below is None:
                return None
            return (above and below) != negated
        case IsNull(operand=operand, negated=negated):
            return (evaluate(operand, row, group) is None) != negated
    raise AssertionError(expr)  # pragma: no cover


def _text(value: Value) -> str:
    if isinstance(value, datetime):
        return serialize(value) or ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def serialize(value: Value) -> str | None:
    """A value as SODA 2 writes it in JSON and CSV: text, numbers as text, instants `...T...000Z`."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    return _text(value)
