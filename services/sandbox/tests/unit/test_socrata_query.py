from __future__ import annotations

import json
from datetime import date

from fmcsa_sandbox import soql
from fmcsa_sandbox.data import snapshot
from fmcsa_sandbox.socrata import (
    COLUMNS,
    INSURANCE,
    INSURANCE_COLUMNS,
    MAX_LIMIT,
    Query,
    SocrataError,
    accepts_gzip,
    assemble,
    page,
    plan,
    row_values,
)


def error_of(params: list[tuple[str, str]]) -> SocrataError:
    planned = plan(params)
    assert isinstance(planned, SocrataError), planned
    return planned


def planned(params: list[tuple[str, str]]) -> Query:
    query = plan(params)
    assert isinstance(query, Query), query
    return query


def test_a_plain_page_query_is_planned() -> None:
    query = planned([("dot_number", "2847193"), ("$order", ":id"), ("$limit", "1000"), ("$offset", "2000")])
    assert (query.limit, query.offset, query.fields, query.grouped) == (1000, 2000, COLUMNS, False)
    assert query.dots() == {"2847193"}
    assert query.statement.order == ((soql.Column(":id", soql.Position(1, 1)), False),)


def test_the_app_token_parameter_is_not_a_column() -> None:
    assert isinstance(plan([("$$app_token", "x"), ("dot_number", "1")]), Query)


def test_parameters_assemble_into_one_statement() -> None:
    assert assemble(
        [("dot_number", "1"), ("$where", "a = 'b' OR c = 'd'"), ("$order", "x"), ("$limit", "5")]
    ) == ("select * where (a = 'b' OR c = 'd') AND dot_number = '1' order by x limit 5")
    assert assemble([("viol_unit", "it's")]) == "select * where viol_unit = 'it''s'"
    whole = "SELECT count(*) WHERE dot_number = '1'"
    assert assemble([("$query", whole), ("$$app_token", "t")]) == whole
    error = assemble([("$query", whole), ("$limit", "5")])
    assert isinstance(error, SocrataError)
    assert error.body["code"] == "query.compiler.malformed"


def test_the_dots_a_where_pins_down() -> None:
    def dots(where: str) -> frozenset[str] | None:
        return planned([("$where", where)]).dots()

    assert dots("dot_number = '1'") == {"1"}
    assert dots("dot_number IN ('1', '2') AND viol_unit = 'D'") == {"1", "2"}
    assert dots("dot_number = '1' OR dot_number = '3'") == {"1", "3"}
    assert dots("dot_number = '1' AND dot_number = '3'") == frozenset()
    assert dots("dot_number = '1' OR viol_unit = 'D'") is None
    assert dots("NOT dot_number = '1'") is None
    # the spellings of one DOT pin one carrier (its rows are then filtered as text), and the number cast pins
    assert dots("dot_number = '02847193' AND dot_number::number = 2847193") == {"2847193"}
    assert dots("dot_number::number = 2847193") == {"2847193"}
    assert dots("dot_number::number = 2.5") is None
    assert dots("dot_number = 'MC1'") == {"MC1"}


def test_the_insurance_dataset_is_planned_against_its_own_columns() -> None:
    query = plan([("dot_number", "02847193"), ("$order", "policy_no DESC")], INSURANCE)
    assert isinstance(query, Query)
    assert query.fields == INSURANCE_COLUMNS
    assert query.dots() == {"2847193"}
    rows = json.loads(page(query, 1, "json", date(2026, 12, 7)).body)
    assert [r["policy_no"] for r in rows] == sorted((r["policy_no"] for r in rows), reverse=True)
    assert {r["dot_number"] for r in rows} == {"02847193"}
    unpadded = plan([("dot_number", "2847193")], INSURANCE)
    assert isinstance(unpadded, Query)
    assert page(unpadded, 1, "json", date(2026, 12, 7)).rows == 0
    wrong = plan([("viol_code", "1")], INSURANCE)  # a column of the other dataset
    assert isinstance(wrong, SocrataError)
    assert (wrong.body["errorCode"], wrong.body["data"]["dataset"]) == (
        "query.soql.no-such-column",
        "alpha.61447",
    )


def test_an_unknown_column_is_a_no_such_column_error() -> None:
    error = error_of([("dot_numbr", "1")])
    assert error.status == 400
    assert error.body["errorCode"] == "query.soql.no-such-column"
    assert error.body["data"]["column"] == "dot_numbr"
    for params in ([("$order", "dot_numbr")], [("$select", "unique_id,nope")], [("$where", "nope = '1'")]):
        assert error_of(params).body["errorCode"] == "query.soql.no-such-column"


def test_a_limit_above_50000_is_refused_with_a_code_body() -> None:
    assert isinstance(plan([("$limit", str(MAX_LIMIT))]), Query)
    error = error_of([("$limit", str(MAX_LIMIT + 1))])
    assert error.status == 400
    assert error.body["code"]
    assert error.body["error"] is True


def test_bad_numbers_and_unknown_parameters_are_malformed() -> None:
    for params in (
        [("$limit", "ten")],
        [("$offset", "-1")],
        [("$q", "brakes")],
        [("$order", "a b c")],
        [("$$exclude_system_fields", "maybe")],
    ):
        error = error_of(params)
        assert error.status == 400
        assert error.body["code"] == "query.compiler.malformed", params


def test_where_accepts_text_equalities_joined_by_and() -> None:
    query = planned([("$where", "dot_number = '2847193' AND viol_unit='D' and basic_desc = 'it''s'")])
    assert query.dots() == {"2847193"}
    last = query.statement.where
    assert isinstance(last, soql.Logic)
    anywhere = soql.Position(1, 1)  # positions take no part in equality
    expected = soql.Literal("it's", "text", anywhere)
    assert last.right == soql.Compare("=", soql.Column("basic_desc", anywhere), expected, anywhere)


def test_where_refuses_what_does_not_parse_at_the_token() -> None:
    for where, offending in (
        ("dot_number = ", None),  # None: the end of input
        ("dot_number = '1' OR", None),
        ("dot_number IN '1'", "'1'"),
        ("dot_number = '1' 2", "2"),
        ("dot_number ~ '1'", "~"),
        ("dot_number = 'open", "'open"),
        ("(dot_number = '1'", None),
    ):
        error = error_of([("$where", where)])
        assert error.body["code"] == "query.compiler.malformed", where
        assert error.body["data"]["query"] == f"select * where {where}"
        at = len(where.rstrip()) if offending is None else where.index(offending)
        column = len("select * where ") + at + 1
        assert f"at line 1 character {column}:" in error.body["message"], (where, error.body["message"])


def test_typed_comparisons_and_group_rules() -> None:
    for params, code in (
        ([("$where", "dot_number = 2847193")], "query.soql.type-mismatch"),
        ([("$where", "dot_number IN ('1', 2)")], "query.soql.type-mismatch"),
        ([("$where", "severity_weight > 5")], "query.soql.type-mismatch"),
        ([("$where", "'1'")], "query.soql.non-boolean-where"),
        ([("$where", "count(*) > 1")], "query.soql.aggregate-in-ungrouped-context"),
        ([("$select", "frobnicate(viol_code)")], "query.soql.no-such-function"),
        ([("$select", "viol_code, count(*)")], "query.soql.column-not-in-group-bys"),
        ([("$select", "viol_unit, count(*)"), ("$group", "viol_unit"), ("$order", "viol_code")],
         "query.soql.column-not-in-group-bys"),
        ([("$group", "dot_number")], "query.soql.column-not-in-group-bys"),
        ([("$select", "viol_code, viol_unit AS viol_code")], "query.soql.duplicate-alias"),
    ):  # fmt: skip
        assert error_of(params).body["errorCode"] == code, params
    assert isinstance(plan([("$where", "severity_weight::number > 5 AND insp_date >= '01-JAN-25'")]), Query)
    assert isinstance(plan([("$where", ":updated_at > '2026-01-01T00:00:00'")]), Query)


def test_accept_encoding_is_read_as_http_says() -> None:
    assert accepts_gzip("gzip, deflate")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip(None)
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")


def test_rows_are_strings_with_null_keys_left_out() -> None:
    found = snapshot(2847193, 1)
    assert found is not None
    for row in found.rows:
        values = row_values(row)
        assert all(isinstance(v, str) for v in values.values())
        assert set(values) <= set(COLUMNS)
        assert set(COLUMNS) - set(values) <= {"group_desc"}
        assert values["total_severity_wght"] == str(
            int(values["severity_weight"]) + int(values["oos_weight"])
        )


def test_dot_number_is_string_equality() -> None:
    assert page(planned([("dot_number", "2847193")]), 1).rows > 0
    for text in ("02847193", "abc", "2847193 ", "-2847193"):
        assert page(planned([("dot_number", text)]), 1).rows == 0


def test_pages_split_the_rows_without_overlap_and_select_adds_the_row_id() -> None:
    def read(*params: tuple[str, str]) -> list[dict[str, str]]:
        return json.loads(page(planned([("dot_number", "99500001"), *params]), 1).body)

    whole = read(("$select", ":id, *"), ("$limit", "5000"))
    assert len(whole) == 2500
    assert next(iter(whole[0])) == ":id"
    parts = [read(("$select", ":id"), ("$limit", "1000"), ("$offset", str(o))) for o in (0, 1000, 2000)]
    assert [len(p) for p in parts] == [1000, 1000, 500]
    assert [r[":id"] for p in parts for r in p] == [r[":id"] for r in whole]


def test_other_filters_and_order_apply_to_the_carriers_rows() -> None:
    only_drivers = page(planned([("dot_number", "2847193"), ("viol_unit", "D"), ("$limit", "5000")]), 1)
    everything = page(planned([("dot_number", "2847193"), ("$limit", "5000")]), 1)
    assert 0 < only_drivers.rows < everything.rows
    newest_first = page(planned([("dot_number", "2847193"), ("$order", "unique_id DESC")]), 1)
    ids = [r["unique_id"] for r in json.loads(newest_first.body)]
    assert ids == sorted(ids, reverse=True)
    assert newest_first.body != everything.body


def test_count_without_rows_is_one_row_of_zero() -> None:
    counted = page(planned([("dot_number", "99000001"), ("$select", "count(*)")]), 1)
    assert json.loads(counted.body) == [{"count": "0"}]
    assert counted.types == ("number",)
