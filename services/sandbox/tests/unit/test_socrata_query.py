from __future__ import annotations

from fmcsa_sandbox.data import snapshot
from fmcsa_sandbox.socrata import (
    COLUMNS,
    MAX_LIMIT,
    Query,
    SocrataError,
    page,
    plan,
    row_values,
)


def error_of(params: list[tuple[str, str]]) -> SocrataError:
    planned = plan(params)
    assert isinstance(planned, SocrataError), planned
    return planned


def test_a_plain_page_query_is_planned() -> None:
    planned = plan([("dot_number", "2847193"), ("$order", ":id"), ("$limit", "1000"), ("$offset", "2000")])
    assert planned == Query(
        filters=(("dot_number", "2847193"),), order=((":id", False),), limit=1000, offset=2000
    )


def test_the_app_token_parameter_is_not_a_column() -> None:
    assert isinstance(plan([("$$app_token", "x"), ("dot_number", "1")]), Query)


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
        [("$group", "dot_number")],
        [("$order", "a b c")],
    ):
        error = error_of(params)
        assert error.status == 400
        assert error.body["code"] == "query.compiler.malformed"


def test_where_accepts_text_equalities_joined_by_and() -> None:
    planned = plan([("$where", "dot_number = '2847193' AND viol_unit='D' and basic_desc = 'it''s'")])
    assert isinstance(planned, Query)
    assert planned.filters == (("dot_number", "2847193"), ("viol_unit", "D"), ("basic_desc", "it's"))


def test_where_refuses_what_it_cannot_handle() -> None:
    for where in (
        "dot_number = ",
        "dot_number > '1'",
        "dot_number = '1' OR 1=1",
        "dot_number IN ('1')",
        "'1'",
    ):
        error = error_of([("$where", where)])
        assert error.body["code"] == "query.compiler.malformed", where
        assert error.body["data"]["query"].startswith("select * where")


def test_a_number_compared_with_a_text_column_is_a_type_mismatch() -> None:
    assert error_of([("$where", "dot_number = 2847193")]).body["errorCode"] == "query.soql.type-mismatch"


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
    assert page(Query(filters=(("dot_number", "2847193"),)), 1).rows > 0
    for text in ("02847193", "abc", "2847193 ", "-2847193"):
        assert page(Query(filters=(("dot_number", text),)), 1).rows == 0


def test_pages_split_the_rows_without_overlap_and_select_adds_the_row_id() -> None:
    whole = page(Query(filters=(("dot_number", "99500001"),), fields=(":id", *COLUMNS), limit=5000), 1)
    assert whole.rows == 2500
    parts = [
        page(Query(filters=(("dot_number", "99500001"),), fields=(":id",), limit=1000, offset=o), 1)
        for o in (0, 1000, 2000)
    ]
    assert [p.rows for p in parts] == [1000, 1000, 500]
    assert whole.fields[0] == ":id"


def test_other_filters_and_order_apply_to_the_carriers_rows() -> None:
    only_drivers = page(Query(filters=(("dot_number", "2847193"), ("viol_unit", "D")), limit=5000), 1)
    everything = page(Query(filters=(("dot_number", "2847193"),), limit=5000), 1)
    assert 0 < only_drivers.rows < everything.rows
    newest_first = page(Query(filters=(("dot_number", "2847193"),), order=(("unique_id", True),)), 1)
    assert newest_first.body != everything.body
