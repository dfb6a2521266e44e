from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fmcsa_sandbox import soql

COLUMNS = {"a": soql.TEXT, "b": soql.TEXT, ":updated_at": soql.TIMESTAMP}
ROWS: list[dict[str, soql.Value]] = [
    {"a": "x", "b": "1", ":updated_at": datetime(2026, 11, 13, 14, 30, tzinfo=UTC)},
    {"a": "y", ":updated_at": datetime(2026, 11, 13, 14, 30, tzinfo=UTC)},  # b is null (key left out)
    {"a": "x", "b": "10", ":updated_at": datetime(2026, 12, 11, 14, 30, tzinfo=UTC)},
]


def where(text: str) -> list[int]:
    """The indexes of ROWS a WHERE keeps, after checking it as the sandbox does."""
    statement = soql.parse(f"select * where {text}")
    assert statement.where is not None
    assert soql.Checker(COLUMNS).type_of(statement.where, aggregates=False) == soql.BOOLEAN
    return [i for i, row in enumerate(ROWS) if soql.evaluate(statement.where, row) is True]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a = 'x'", [0, 2]),
        ("a = 'x' AND b = '1' OR a = 'y'", [0, 1]),  # AND binds tighter than OR
        ("a = 'x' AND (b = '1' OR a = 'y')", [0]),
        ("b != '1'", [2]),  # null is neither equal nor unequal
        ("NOT b = '1'", [2]),
        ("b IS NULL", [1]),
        ("b IS NOT NULL", [0, 2]),
        ("b IN ('1', '10')", [0, 2]),
        ("b NOT IN ('1')", [2]),
        ("b > '1'", [2]),  # text order
        ("b < '9'", [0, 2]),  # '10' < '9' as text
        ("b::number < 9", [0]),  # numbers after a cast
        ("b::number BETWEEN 1 AND 10", [0, 2]),
        ("b::number NOT BETWEEN 2 AND 10", [0]),
        ("a LIKE 'x%'", [0, 2]),
        ("upper(a) LIKE 'Y'", [1]),
        ("a NOT LIKE '_'", []),
        (":updated_at > '2026-12-01'", [2]),
        (":updated_at = '2026-11-13T14:30:00Z'", [0, 1]),
        ("TRUE", [0, 1, 2]),
    ],
)
def test_where_keeps_exactly_the_rows_sql_would(text: str, kept: list[int]) -> None:
    assert where(text) == kept


def test_keywords_are_case_insensitive_and_statements_may_span_lines() -> None:
    statement = soql.parse(
        "SeLeCt a, count(*) AS n\nWhErE a = 'x'\nGROUP BY a ORDER BY n DESC LIMIT 3 OFFSET 1"
    )
    assert statement.group == (soql.Column("a", soql.Position(9, 9)),)
    assert (statement.limit, statement.offset) == (3, 1)
    assert statement.order[0][1] is True
    assert statement.select[1] == soql.Item(
        soql.Call("count", (), True, soql.Position(1, 1)), "n", soql.Position(1, 1)
    )


@pytest.mark.parametrize(
    ("statement", "row", "column", "says"),
    [
        ("select * where a = ", 1, 19, "Expected an expression, but got end of input"),
        ("select * where a = 'x' b", 1, 24, "but got `b'"),
        ("select *\nwhere a IN 'x'", 2, 12, "Expected `(', but got `'x''"),
        ("select * where a = 'open", 1, 20, "Unterminated string"),
        ("select * order by a sideways", 1, 21, "but got `sideways'"),
        ("select * limit 10.5", 1, 16, "Expected a non-negative integer"),
        ("select a as select", 1, 13, "Expected an alias"),
    ],
)
def test_parse_errors_name_line_and_character_of_the_offending_token(
    statement: str, row: int, column: int, says: str
) -> None:
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse(statement)
    assert caught.value.code == "query.compiler.malformed"
    assert caught.value.position == soql.Position(row, column)
    assert f"at line {row} character {column}: " in caught.value.message
    assert says in caught.value.message


def test_type_errors_point_at_the_operator_or_the_name() -> None:
    checker = soql.Checker(COLUMNS)
    for text, code, column in (
        ("a = 1", "query.soql.type-mismatch", 3),
        ("a > TRUE", "query.soql.type-mismatch", 3),
        ("nope = 'x'", "query.soql.no-such-column", 1),
        ("a = 'x' AND b", "query.soql.type-mismatch", 9),
        ("frob(a) = 'x'", "query.soql.no-such-function", 1),
        ("count(*) > 1", "query.soql.aggregate-in-ungrouped-context", 1),
    ):
        expr = soql.parse(f"select * where {text}").where
        assert expr is not None
        with pytest.raises(soql.SoqlError) as caught:
            checker.type_of(expr, aggregates=False)
        assert (caught.value.code, caught.value.position.column - len("select * where ")) == (code, column), (
            text
        )


def test_aggregates_over_a_group() -> None:
    group = ROWS
    for text, value in (
        ("count(*)", Decimal(3)),
        ("count(b)", Decimal(2)),
        ("max(b)", "10"),  # text order: '1' < '10'
        ("min(a)", "x"),
        ("sum(b::number)", Decimal(11)),
        ("max(:updated_at)", datetime(2026, 12, 11, 14, 30, tzinfo=UTC)),
    ):
        item = soql.parse(f"select {text}").select[0]
        assert isinstance(item, soql.Item)
        assert soql.evaluate(item.expr, group[0], group) == value, text


def test_values_are_served_as_socrata_writes_them() -> None:
    assert soql.serialize(Decimal(2500)) == "2500"
    assert soql.serialize(Decimal("1.50")) == "1.50"
    assert soql.serialize(datetime(2026, 11, 13, 14, 30, tzinfo=UTC)) == "2026-11-13T14:30:00.000Z"
    assert soql.serialize(None) is None
    assert soql.serialize(True) == "true"
