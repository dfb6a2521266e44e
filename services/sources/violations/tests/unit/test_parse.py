"""Parsing and classification of Socrata answers (README 4.3, 4.4, 4.7 and section 6 examples)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from fmcsa_events.identifiers import Basic
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import register_secret
from fmcsa_source_kit.failures import Failure
from fmcsa_source_violations.domain.model import Page, ViolationUnit
from fmcsa_source_violations.domain.paging import assemble
from fmcsa_source_violations.domain.parse import (
    parse_dd_mon_yy,
    parse_flag,
    parse_integer,
    parse_page,
    parse_row,
)

NOW = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
DOT = "2847193"
HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Last-Modified": "Tue, 21 Oct 2025 09:12:44 GMT",
    "X-Socrata-RequestId": "abc123def",
}


def page(
    status: int, body: bytes, *, headers: dict[str, str] | None = None, token: bool = True
) -> Page | Failure:
    return parse_page(
        status,
        HEADERS if headers is None else headers,
        body,
        DOT,
        NOW,
        token_sent=token,
        retry_after_max_s=3600.0,
    )


def a_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "unique_id": "905120418",
        "insp_date": "02-SEP-25",
        "dot_number": DOT,
        "viol_code": "39347E",
        "basic_desc": "Vehicle Maintenance",
        "oos_indicator": "true",
        "oos_weight": "2",
        "severity_weight": "4",
        "time_weight": "3",
        "total_severity_wght": "6",
        "section_desc": "Clamp or Roto-chamber type brake(s) out of adjustment",
        "group_desc": "Brakes Out of Adjustment",
        "viol_unit": "1",
    }
    row.update(overrides)
    return {key: value for key, value in row.items() if value is not ...}


def failure(result: Page | Failure) -> Failure:
    assert isinstance(result, Failure), result
    return result


# --- the example files ------------------------------------------------------------------------------


def test_the_example_page_parses_into_five_normalized_violations(examples_dir: Path) -> None:
    result = page(200, (examples_dir / "socrata-8mt8-2mdr-page.json").read_bytes())
    assert isinstance(result, Page)
    assert len(result.rows) == 5
    first = result.rows[0]
    assert first.dot_number == 2847193
    assert first.unique_id == "905120418"
    assert first.insp_date == date(2025, 9, 2)
    assert first.oos is True
    assert (first.oos_weight, first.severity_weight, first.time_weight, first.total_severity_wght) == (
        2,
        4,
        3,
        6,
    )
    assert first.basic is Basic.VEHICLE_MAINTENANCE
    assert first.unit is ViolationUnit.MAIN_UNIT
    assert result.last_modified == datetime(2025, 10, 21, 9, 12, 44, tzinfo=UTC)
    assert result.request_id == "abc123def"


def test_the_example_soft_hyphen_is_dropped_from_basic_desc(examples_dir: Path) -> None:
    result = page(200, (examples_dir / "socrata-8mt8-2mdr-page.json").read_bytes())
    assert isinstance(result, Page)
    hos = result.rows[3]
    assert hos.basic_desc == "Hours-of-Service Compliance"
    assert hos.basic is Basic.HOS_COMPLIANCE
    assert hos.unit is ViolationUnit.DRIVER


def test_the_example_duplicates_get_ordinals_0_and_1(examples_dir: Path) -> None:
    result = page(200, (examples_dir / "socrata-8mt8-2mdr-page.json").read_bytes())
    assert isinstance(result, Page)
    fetch = assemble(DOT, [result], retrieved_at=NOW)
    assert [v.ordinal for v in fetch.records] == [0, 0, 1, 0, 0]
    assert len({v.key for v in fetch.records}) == 5
    assert fetch.records[1].content_hash == fetch.records[2].content_hash


def test_the_empty_example_is_a_success_with_zero_records(examples_dir: Path) -> None:
    result = page(200, (examples_dir / "socrata-8mt8-2mdr-empty.json").read_bytes())
    assert isinstance(result, Page)
    assert result.rows == ()
    assert assemble(DOT, [result], retrieved_at=NOW).records == ()


@pytest.mark.parametrize(
    ("name", "status", "kind", "code"),
    [
        ("socrata-error-400.json", 400, ErrorKind.UPSTREAM_ERROR, "query.soql.no-such-column"),
        ("socrata-error-400-parse.json", 400, ErrorKind.UPSTREAM_ERROR, "query.compiler.malformed"),
        ("socrata-error-404.json", 404, ErrorKind.UPSTREAM_ERROR, "dataset.missing"),
        ("socrata-error-403-app-token.json", 403, ErrorKind.NOT_CONFIGURED, "permission_denied"),
    ],
)
def test_the_error_examples_fail_with_their_documented_kind_not_retryable(
    examples_dir: Path, name: str, status: int, kind: ErrorKind, code: str
) -> None:
    result = failure(page(status, (examples_dir / name).read_bytes()))
    assert result.kind is kind
    assert result.retryable is False
    assert f"code={code}" in result.detail
    assert "request_id=abc123def" in result.detail
    assert code in result.message


def test_the_content_hash_of_the_example_row_is_pinned(examples_dir: Path) -> None:
    # A changed value reads every stored row as updated once: bump HASH_VERSION on purpose, never by accident.
    first = json.loads((examples_dir / "socrata-8mt8-2mdr-page.json").read_bytes())[0]
    assert (
        parse_row(first, DOT).content_hash
        == "a044061211a9d43d180633bfc28a8c4cab5830c041e21f37d012880fa30c6019"
    )


# --- classification (README 4.7) -----------------------------------------------------------------------


def test_a_full_page_of_rows_is_a_page() -> None:
    result = page(200, json.dumps([a_row(), a_row(viol_code="3939TS")]).encode())
    assert isinstance(result, Page)
    assert len(result.rows) == 2


def test_202_is_a_retryable_upstream_error_that_keeps_retry_after() -> None:
    result = failure(page(202, b"", headers={**HEADERS, "Retry-After": "2"}))
    assert (result.kind, result.retryable, result.retry_after_s) == (ErrorKind.UPSTREAM_ERROR, True, 2.0)


def test_403_without_a_token_is_an_edge_refusal_not_a_configuration_problem() -> None:
    result = failure(page(403, b"<html>Forbidden</html>", token=False))
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, False)


def test_401_with_a_token_is_not_configured() -> None:
    result = failure(page(401, b'{"code":"permission_denied"}'))
    assert (result.kind, result.retryable) == (ErrorKind.NOT_CONFIGURED, False)


def test_414_is_our_bug() -> None:
    result = failure(page(414, b""))
    assert (result.kind, result.retryable) == (ErrorKind.INTERNAL, False)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("1", 1.0), (None, None), ("99999", 3600.0), ("Tue, 04 Nov 2025 14:00:30 GMT", 30.0), ("soon", None)],
)
def test_429_is_rate_limited_and_honours_retry_after_clamped(
    retry_after: str | None, expected: float | None
) -> None:
    headers = {**HEADERS, **({"retry-after": retry_after} if retry_after else {})}
    result = failure(page(429, b"Too Many Requests", headers=headers))
    assert (result.kind, result.retryable, result.retry_after_s) == (ErrorKind.RATE_LIMITED, True, expected)


@pytest.mark.parametrize(("status", "body"), [(500, b"{}"), (502, b"<html>Bad gateway</html>"), (503, b"")])
def test_5xx_with_any_body_is_a_retryable_upstream_error(status: int, body: bytes) -> None:
    result = failure(page(status, body))
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, True)
    assert f"status={status}" in result.detail


@pytest.mark.parametrize("status", [405, 409, 418])
def test_another_4xx_is_an_upstream_error_not_retryable(status: int) -> None:
    result = failure(page(status, b"{}"))
    assert (result.kind, result.retryable) == (ErrorKind.UPSTREAM_ERROR, False)


@pytest.mark.parametrize("body", [b"", b"<html>maintenance</html>", b'[{"unique_id": "9051', b"\xff\xfe["])
def test_200_not_json_or_cut_short_is_a_retryable_invalid_response(body: bytes) -> None:
    result = failure(page(200, body))
    assert (result.kind, result.retryable) == (ErrorKind.INVALID_RESPONSE, True)


@pytest.mark.parametrize(
    "payload",
    [
        {"rows": []},
        "[]",
        None,
        ["not an object"],
        [a_row(dot_number="1234567")],
        [a_row(insp_date="2025-09-02T12:00")],
        [a_row(insp_date="31-FEB-25")],
        [a_row(insp_date="02-SPT-25")],
        [a_row(oos_indicator="Y")],
        [a_row(oos_indicator=1)],
        [a_row(severity_weight="4.0")],
        [a_row(severity_weight="-4")],
        [a_row(time_weight=True)],
        [a_row(unique_id=905120418)],
        [a_row(viol_code=...)],
        [a_row(viol_unit="")],
        [a_row(oos_weight=None)],
        [a_row(), a_row(dot_number="2847194")],
    ],
)
def test_json_of_the_wrong_shape_is_an_invalid_response_not_retryable(payload: Any) -> None:
    result = failure(page(200, json.dumps(payload).encode()))
    assert (result.kind, result.retryable) == (ErrorKind.INVALID_RESPONSE, False)


def test_a_wrong_row_names_its_position_and_field() -> None:
    result = failure(page(200, json.dumps([a_row(), a_row(severity_weight="heavy")]).encode()))
    assert "row 1" in result.message
    assert "not an integer" in result.message


def test_a_failure_detail_is_short_and_scrubbed_of_registered_secrets() -> None:
    register_secret("sentinel-token-4f9d")
    body = json.dumps({"code": "permission_denied", "echo": "sentinel-token-4f9d" + "x" * 500}).encode()
    result = failure(page(403, body))
    assert "sentinel-token-4f9d" not in result.detail
    assert "sentinel-token-4f9d" not in result.message
    assert len(result.detail) < 400


def test_the_request_id_header_is_read_in_any_case() -> None:
    result = failure(page(500, b"", headers={"x-socrata-requestid": "lower-case-id"}))
    assert "request_id=lower-case-id" in result.detail


def test_the_truth_header_stands_in_for_a_missing_last_modified() -> None:
    headers = {"X-SODA2-Truth-Last-Modified": "Tue, 21 Oct 2025 09:12:44 GMT"}
    result = page(200, b"[]", headers=headers)
    assert isinstance(result, Page)
    assert result.last_modified == datetime(2025, 10, 21, 9, 12, 44, tzinfo=UTC)


def test_no_last_modified_means_no_as_of() -> None:
    result = page(200, b"[]", headers={})
    assert isinstance(result, Page)
    assert (result.version, result.last_modified) == (None, None)


# --- row normalization ----------------------------------------------------------------------------------


def test_a_missing_optional_key_is_null() -> None:
    violation = parse_row(
        a_row(section_desc=..., group_desc=..., basic_desc=..., total_severity_wght=...), DOT
    )
    assert (violation.section_desc, violation.group_desc, violation.basic_desc) == (None, None, None)
    assert violation.total_severity_wght is None
    assert violation.basic is None


def test_unknown_keys_are_ignored() -> None:
    violation = parse_row(a_row(**{":@computed_region_x": "7", "new_column": "z"}), DOT)
    assert violation.viol_code == "39347E"


def test_an_unknown_basic_label_is_kept_without_a_key() -> None:
    violation = parse_row(a_row(basic_desc="Hazmat  Compliance\u200b"), DOT)
    assert violation.basic is Basic.HAZMAT_COMPLIANCE
    other = parse_row(a_row(basic_desc="Something New"), DOT)
    assert (other.basic, other.basic_desc) == (None, "Something New")


def test_identity_values_are_kept_verbatim_but_for_invisible_characters() -> None:
    violation = parse_row(a_row(unique_id=" 9051\u200b20418 ", viol_code="392&amp;2"), DOT)
    assert (violation.unique_id, violation.viol_code) == ("905120418", "392&amp;2")


def test_an_unknown_unit_code_is_kept_with_no_unit_kind() -> None:
    violation = parse_row(a_row(viol_unit="3"), DOT)
    assert (violation.viol_unit, violation.unit) == ("3", None)


def test_a_lower_case_unit_code_is_normalized() -> None:
    assert parse_row(a_row(viol_unit="d"), DOT).unit is ViolationUnit.DRIVER


def test_json_numbers_and_booleans_are_accepted_where_types_are_unverified() -> None:
    violation = parse_row(a_row(dot_number=2847193, oos_indicator=False, oos_weight=0, time_weight=1), DOT)
    assert (violation.oos, violation.oos_weight, violation.time_weight) == (False, 0, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07-OCT-24", date(2024, 10, 7)),
        ("02-sep-25", date(2025, 9, 2)),
        ("29-FEB-24", date(2024, 2, 29)),
        ("31-DEC-99", date(2099, 12, 31)),
        (" 01-JAN-00 ", date(2000, 1, 1)),
        ("2024-10-07T00:00:00.000", date(2024, 10, 7)),
        ("2024-10-07", date(2024, 10, 7)),
    ],
)
def test_dates_are_dd_mon_yy_with_our_own_month_map(text: str, expected: date) -> None:
    assert parse_dd_mon_yy(text) == expected


@pytest.mark.parametrize(
    "text", ["7-OCT-24", "07-OCT-2024", "07/10/24", "29-FEB-25", "07-OKT-24", "", "07-OCT-24x", "20241007"]
)
def test_anything_else_is_not_a_date(text: str) -> None:
    with pytest.raises(ValueError, match=r"date|month|day|range"):
        parse_dd_mon_yy(text)


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("FALSE", False), (" True ", True), (True, True), (False, False)]
)
def test_flags_are_true_or_false_in_any_case(value: object, expected: bool) -> None:
    assert parse_flag(value) is expected


@pytest.mark.parametrize("value", ["Y", "N", "1", "", None, 1, "yes"])
def test_other_flags_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="flag"):
        parse_flag(value)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("10", 10), (" 6 ", 6), (3, 3)])
def test_integers_are_digits_or_json_integers(value: object, expected: int) -> None:
    assert parse_integer(value) == expected


@pytest.mark.parametrize("value", ["4.0", "-1", "", "1e3", 4.0, True, None, "٣", -2])
def test_other_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="integer"):
        parse_integer(value)
