from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fmcsa_events.models import ErrorKind
from fmcsa_source_inspections.domain.content import (
    content_hash,
    decimal_text,
    snapshot_content,
    snapshot_from_content,
)
from fmcsa_source_inspections.domain.parse import parse_response
from fmcsa_source_inspections.domain.records import (
    InspectionFigures,
    InspectionsFetch,
    SafetyRating,
    Snapshot,
)
from fmcsa_source_inspections.domain.summary import summarize
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.upstream import RetryPolicy

NOW = datetime(2025, 11, 4, 14, 12, 8, tzinfo=UTC)


def example(examples_dir: Path, name: str) -> bytes:
    return (examples_dir / name).read_bytes()


def ok(body: object, dot: str = "2847193", status: int = 200) -> InspectionsFetch:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = parse_response(status, {}, raw, dot, NOW)
    assert isinstance(result, InspectionsFetch), result
    return result


def failed(
    status: int, body: object = b"", dot: str = "2847193", headers: dict[str, str] | None = None
) -> Failure:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = parse_response(status, headers or {}, raw, dot, NOW)
    assert isinstance(result, Failure), result
    return result


def snapshot_body(examples_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(example(examples_dir, "saferwebapi-snapshot.json"))
    return loaded


# --- the example files -------------------------------------------------------------------------------


def test_the_us_inspections_example_parses_with_integer_counts(examples_dir: Path) -> None:
    fetch = ok(example(examples_dir, "saferwebapi-snapshot.json"))
    snapshot = fetch.snapshot
    assert fetch.dot == "2847193"
    assert fetch.retrieved_at == NOW
    assert fetch.upstream_as_of == datetime(2025, 11, 3, tzinfo=UTC)
    assert fetch.records == (snapshot,)
    assert snapshot.usdot == 2847193
    assert snapshot.legal_name == "NORTHFIELD FREIGHT LINES LLC"
    assert snapshot.dba_name is None  # "" names are None
    assert snapshot.state_carrier_id is None
    assert snapshot.duns_number is None
    assert snapshot.operating_status == "ACTIVE"
    assert snapshot.out_of_service_date is None
    assert snapshot.power_units == 6
    assert snapshot.drivers == 7
    assert snapshot.mcs_150_form_date == date(2025, 1, 16)
    assert snapshot.mcs_150_mileage_year is not None
    assert (snapshot.mcs_150_mileage_year.mileage, snapshot.mcs_150_mileage_year.year) == (610000, 2024)
    assert snapshot.cargo_carried == ("General Freight", "Building Materials")
    assert snapshot.us_inspections is not None
    assert snapshot.us_inspections.vehicle == InspectionFigures(6, 1, Decimal("16.67"), Decimal("20.72"))
    assert snapshot.us_inspections.driver == InspectionFigures(9, 0, Decimal("0"), Decimal("5.51"))
    assert snapshot.us_inspections.iep == InspectionFigures(0, 0, Decimal("0"), None)  # "N/A"
    assert snapshot.canada_inspections is not None
    assert snapshot.canada_inspections.vehicle == InspectionFigures(0, 0, Decimal("0"), None)
    assert snapshot.us_crashes is not None
    assert (snapshot.us_crashes.tow, snapshot.us_crashes.total) == (1, 1)
    assert snapshot.safety_rating is SafetyRating.SATISFACTORY
    assert snapshot.safety_rating_date == date(2019, 8, 14)
    assert snapshot.safety_review_date == date(2019, 8, 12)
    assert snapshot.safety_type == "COMPLIANCE REVIEW"
    assert snapshot.latest_update == date(2025, 11, 3)


def test_the_united_states_inspections_example_parses_with_string_counts(examples_dir: Path) -> None:
    fetch = ok(example(examples_dir, "saferwebapi-snapshot-alt.json"), dot="3310562")
    snapshot = fetch.snapshot
    assert snapshot.operating_status == "OUT-OF-SERVICE"
    assert snapshot.out_of_service_date == date(2025, 4, 22)
    assert snapshot.dba_name == "RBH TRANSPORT"
    assert snapshot.us_inspections is not None
    assert snapshot.us_inspections.vehicle == InspectionFigures(15, 2, Decimal("13.33"), Decimal("20.72"))
    assert snapshot.us_inspections.iep == InspectionFigures(0, 0, Decimal("0"), None)
    assert snapshot.safety_rating is None
    assert snapshot.safety_rating_date is None
    assert fetch.upstream_as_of == datetime(2025, 10, 28, tzinfo=UTC)


def test_the_401_example_is_not_configured(examples_dir: Path) -> None:
    failure = failed(401, example(examples_dir, "saferwebapi-401.json"))
    assert (failure.kind, failure.retryable) == (ErrorKind.NOT_CONFIGURED, False)
    assert "Unauthorized" in failure.detail


def test_the_404_example_is_not_found(examples_dir: Path) -> None:
    failure = failed(404, example(examples_dir, "saferwebapi-404.json"))
    assert (failure.kind, failure.retryable) == (ErrorKind.NOT_FOUND, False)
    assert "USDOT number not found" in failure.detail


# --- classification table (README 5.5) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (401, ErrorKind.NOT_CONFIGURED, False),
        (403, ErrorKind.NOT_CONFIGURED, False),
        (404, ErrorKind.NOT_FOUND, False),
        (429, ErrorKind.RATE_LIMITED, True),
        (500, ErrorKind.UPSTREAM_ERROR, True),
        (502, ErrorKind.UPSTREAM_ERROR, True),
        (503, ErrorKind.UPSTREAM_ERROR, True),
        (504, ErrorKind.UPSTREAM_ERROR, True),
        (400, ErrorKind.UPSTREAM_ERROR, False),
        (405, ErrorKind.UPSTREAM_ERROR, False),
        (410, ErrorKind.UPSTREAM_ERROR, False),
        (418, ErrorKind.UPSTREAM_ERROR, False),
        (414, ErrorKind.INTERNAL, False),
        (301, ErrorKind.UPSTREAM_ERROR, False),
    ],
)
def test_each_status_has_its_kind(status: int, kind: ErrorKind, retryable: bool) -> None:
    failure = failed(status, {"message": "whatever"})
    assert (failure.kind, failure.retryable) == (kind, retryable)
    assert f"HTTP {status}" in failure.detail


@pytest.mark.parametrize("body", [None, {}, {"message": "nothing here"}, {"usdot": "", "legal_name": ""}])
def test_an_empty_snapshot_is_not_found(body: object) -> None:
    failure = failed(200, body)
    assert (failure.kind, failure.retryable) == (ErrorKind.NOT_FOUND, False)


def test_a_429_with_retry_after_seconds_waits_that_long() -> None:
    failure = failed(429, b"Too Many Requests", headers={"Retry-After": "7"})
    assert failure.retry_after_s == 7.0


def test_a_429_with_retry_after_as_http_date_waits_until_then() -> None:
    when = (NOW + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    failure = failed(429, b"", headers={"retry-after": when})
    assert failure.retry_after_s == 30.0


def test_a_429_without_retry_after_waits_60_seconds() -> None:
    failure = failed(429, b"Too Many Requests")
    assert failure.retry_after_s == 60.0
    assert failure.retry_after_s > RetryPolicy().inline_wait_max_s  # so it goes back to the bus


def test_a_429_retry_after_is_clamped_to_the_ceiling() -> None:
    result = parse_response(429, {"Retry-After": "999999"}, b"", "1", NOW, retry_after_max_s=3600.0)
    assert isinstance(result, Failure)
    assert result.retry_after_s == 3600.0


def test_a_503_passes_on_its_retry_after() -> None:
    assert failed(503, b"busy", headers={"Retry-After": "2"}).retry_after_s == 2.0
    assert failed(500, b"boom").retry_after_s is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Service Unavailable</body></html>",
        b'{"usdot": "2847193", "legal_name": "NORTHFI',
        b"",
        b"\xff\xfe\x00garbage",
    ],
)
def test_a_200_that_is_not_json_or_cut_short_is_retryable_invalid_response(body: bytes) -> None:
    failure = failed(200, body)
    assert (failure.kind, failure.retryable) == (ErrorKind.INVALID_RESPONSE, True)


@pytest.mark.parametrize(
    "body",
    [
        [],
        [{"usdot": "2847193"}],
        "2847193",
        42,
        {"usdot": "2847193", "us_inspections": []},
        {"usdot": "2847193", "us_inspections": {"vehicle": {"inspections": "six"}}},
        {"usdot": "2847193", "power_units": -1},
        {"usdot": "2847193", "drivers": 7.5},
        {"usdot": "2847193", "drivers": True},
        {"usdot": "2847193", "latest_update": "2025-11-03"},
        {"usdot": "2847193", "latest_update": "13/45/2025"},
        {"usdot": "2847193", "safety_rating": "EXCELLENT"},
        {"usdot": "2847193", "cargo_carried": "General Freight"},
        {"usdot": "2847193", "legal_name": 12},
        {"usdot": "abc"},
        {"usdot": "2847193", "canada_inspections": {"driver": {"out_of_service_percent": "lots"}}},
    ],
)
def test_a_200_of_the_wrong_shape_is_final_invalid_response(body: object) -> None:
    failure = failed(200, body)
    assert (failure.kind, failure.retryable) == (ErrorKind.INVALID_RESPONSE, False)
    assert failure.detail


def test_a_snapshot_of_another_dot_is_final_invalid_response(examples_dir: Path) -> None:
    failure = failed(200, example(examples_dir, "saferwebapi-snapshot.json"), dot="3310562")
    assert (failure.kind, failure.retryable) == (ErrorKind.INVALID_RESPONSE, False)
    assert "requested 3310562" in failure.detail


def test_details_carry_no_more_than_a_short_scrubbed_sample() -> None:
    failure = failed(500, b"x-api-key: sentinel-secret-value " + b"y" * 5000)
    assert "sentinel-secret-value" not in failure.detail
    assert len(failure.detail) < 260


# --- normalization -----------------------------------------------------------------------------------


def test_a_snapshot_with_only_a_name_is_a_success() -> None:
    fetch = ok(
        {"usdot": "2847193", "legal_name": "BRAND NEW CARRIER LLC", "us_inspections": None, "url": "x"}
    )
    assert fetch.snapshot == Snapshot(usdot=2847193, legal_name="BRAND NEW CARRIER LLC")
    assert fetch.upstream_as_of is None


def test_a_name_without_usdot_is_taken_for_the_requested_dot() -> None:
    assert ok({"legal_name": "NAME ONLY"}, dot="123").snapshot.usdot == 123


def test_usdot_may_come_as_a_number() -> None:
    assert ok({"usdot": 2847193, "legal_name": "X"}).snapshot.usdot == 2847193


def test_us_inspections_is_preferred_over_united_states_inspections() -> None:
    group = {"inspections": 1, "out_of_service": 0, "out_of_service_percent": "0%", "national_average": "N/A"}
    other = {**group, "inspections": "9"}
    both = ok(
        {
            "usdot": "2847193",
            "us_inspections": {"vehicle": group},
            "united_states_inspections": {"vehicle": other},
        }
    )
    assert both.snapshot.us_inspections is not None
    assert both.snapshot.us_inspections.vehicle is not None
    assert both.snapshot.us_inspections.vehicle.inspections == 1
    fallback = ok(
        {"usdot": "2847193", "us_inspections": None, "united_states_inspections": {"vehicle": other}}
    )
    assert fallback.snapshot.us_inspections is not None
    assert fallback.snapshot.us_inspections.vehicle is not None
    assert fallback.snapshot.us_inspections.vehicle.inspections == 9


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13.33%", Decimal("13.33")),
        ("0%", Decimal("0")),
        ("100%", Decimal("100")),
        (" 7.5 % ", Decimal("7.5")),
        ("5.51", Decimal("5.51")),
        (12, Decimal("12")),
        (12.5, Decimal("12.5")),
        ("N/A", None),
        ("", None),
        (None, None),
        ("None", None),
    ],
)
def test_percents_become_decimals_or_none(raw: object, expected: Decimal | None) -> None:
    body = {
        "usdot": "1",
        "us_inspections": {"driver": {"out_of_service_percent": raw, "national_average": raw}},
    }
    figures = ok(body, dot="1").snapshot.us_inspections
    assert figures is not None
    assert figures.driver is not None
    assert figures.driver.out_of_service_percent == expected
    assert figures.driver.national_average == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [(6, 6), ("6", 6), (" 15 ", 15), ("1,234", 1234), (0, 0), (None, None), ("", None)]
)
def test_counts_are_ints_or_digit_strings(raw: object, expected: int | None) -> None:
    assert ok({"usdot": "1", "power_units": raw}, dot="1").snapshot.power_units == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11/03/2025", date(2025, 11, 3)),
        ("1/2/2024", date(2024, 1, 2)),
        (None, None),
        ("", None),
        ("None", None),
    ],
)
def test_dates_are_month_day_year_or_none(raw: object, expected: date | None) -> None:
    assert ok({"usdot": "1", "safety_rating_date": raw}, dot="1").snapshot.safety_rating_date == expected


def test_empty_codes_and_names_are_none_and_text_is_trimmed() -> None:
    snapshot = ok(
        {
            "usdot": "1",
            "legal_name": "  ACME  ",
            "dba_name": "",
            "state_carrier_id": "None",
            "mc_mx_ff_numbers": None,
            "safety_type": "",
            "operation_classification": ["Auth. For Hire", " ", ""],
            "carrier_operation": None,
            "safety_rating": "conditional",
        },
        dot="1",
    ).snapshot
    assert snapshot.legal_name == "ACME"
    assert (
        snapshot.dba_name,
        snapshot.state_carrier_id,
        snapshot.mc_mx_ff_numbers,
        snapshot.safety_type,
    ) == (
        None,
        None,
        None,
        None,
    )
    assert snapshot.operation_classification == ("Auth. For Hire",)
    assert snapshot.carrier_operation == ()
    assert snapshot.safety_rating is SafetyRating.CONDITIONAL


def test_unknown_keys_are_ignored(examples_dir: Path) -> None:
    body = {**snapshot_body(examples_dir), "usdot_status": "ACTIVE", "us_crash": {"x": 1}}
    assert ok(body).snapshot == ok(snapshot_body(examples_dir)).snapshot


# --- content, hashing, summary -----------------------------------------------------------------------


def test_content_round_trips_exactly(examples_dir: Path) -> None:
    for name, dot in (("saferwebapi-snapshot.json", "2847193"), ("saferwebapi-snapshot-alt.json", "3310562")):
        snapshot = ok(example(examples_dir, name), dot=dot).snapshot
        content = json.loads(json.dumps(snapshot_content(snapshot)))
        assert snapshot_from_content(content) == snapshot
    bare = Snapshot(usdot=5, legal_name="ONLY A NAME")
    assert snapshot_from_content(snapshot_content(bare)) == bare


def test_the_hash_ignores_url_spelling_number_types_and_percent_format(examples_dir: Path) -> None:
    body = snapshot_body(examples_dir)
    respelled = {k: v for k, v in body.items() if k != "us_inspections"}
    respelled["united_states_inspections"] = {
        group: {
            "inspections": str(figures["inspections"]),
            "out_of_service": str(figures["out_of_service"]),
            "out_of_service_percent": figures["out_of_service_percent"].replace("16.67", "16.670"),
            "national_average": figures["national_average"],
        }
        for group, figures in body["us_inspections"].items()
    }
    respelled["url"] = "https://example.invalid/elsewhere"
    assert content_hash(ok(respelled).snapshot) == content_hash(ok(body).snapshot)


def test_the_hash_changes_with_any_figure_and_with_latest_update(examples_dir: Path) -> None:
    body = snapshot_body(examples_dir)
    base = content_hash(ok(body).snapshot)
    more = json.loads(json.dumps(body))
    more["us_inspections"]["driver"]["inspections"] = 10
    later = {**body, "latest_update": "11/04/2025"}
    rated = {**body, "safety_rating": "CONDITIONAL"}
    hashes = {base, *(content_hash(ok(b).snapshot) for b in (more, later, rated))}
    assert len(hashes) == 4
    assert all(len(h) == 64 for h in hashes)


def test_the_hash_is_stable_across_runs_and_versions() -> None:
    # A pinned value: if normalization or serialization changes, every stored hash stops matching and
    # the next sync of every carrier would count as updated. Change it only on purpose.
    assert (
        content_hash(Snapshot(usdot=1)) == "5b0bfb1f9d670705b8f513d043d96dfade04c84b40b6feebf424918e6f490e3d"
    )
    assert content_hash(Snapshot(usdot=1)) != content_hash(Snapshot(usdot=2))


def test_decimal_text_is_canonical() -> None:
    assert [decimal_text(Decimal(v)) for v in ("16.670", "10", "0.00", "100.0", "1E+1")] == [
        "16.67",
        "10",
        "0",
        "100",
        "10",
    ]


RATE_38 = "16.66666666666666666666666666666666666667"
AVERAGE_38 = "20.72000000000000000000000000000000000001"


def with_raw_numbers(document: Any, numbers: dict[str, str]) -> bytes:
    """`document` as JSON with each `"@name@"` string replaced by raw number text (json.dumps cannot
    write a 38-decimal number).
    """
    text = json.dumps(document)
    for name, raw in numbers.items():
        text = text.replace(f'"@{name}@"', raw)
    return text.encode()


def vehicle_percent_variant(examples_dir: Path, percent: str, average: str = '"20.72%"') -> bytes:
    """The snapshot example with the US vehicle out-of-service percent served as the raw JSON number
    `percent`, and its national average as the raw JSON value `average`.
    """
    body = snapshot_body(examples_dir)
    body["us_inspections"]["vehicle"]["out_of_service_percent"] = "@percent@"
    body["us_inspections"]["vehicle"]["national_average"] = "@average@"
    return with_raw_numbers(body, {"percent": percent, "average": average})


def test_a_38_decimal_percent_is_read_stored_and_summarized_exactly(examples_dir: Path) -> None:
    fetch = ok(vehicle_percent_variant(examples_dir, RATE_38, f'"{AVERAGE_38}%"'))
    us = fetch.snapshot.us_inspections
    assert us is not None
    assert us.vehicle is not None
    assert us.vehicle.out_of_service_percent == Decimal(RATE_38)
    assert us.vehicle.national_average == Decimal(AVERAGE_38)
    content: Any = snapshot_content(fetch.snapshot)  # what the store keeps and hashes
    assert content["us_inspections"]["vehicle"]["out_of_service_percent"] == RATE_38
    assert content["us_inspections"]["vehicle"]["national_average"] == AVERAGE_38
    assert snapshot_from_content(json.loads(json.dumps(content))) == fetch.snapshot
    summary: Any = summarize(fetch)
    assert summary["us_inspections"]["vehicle"]["out_of_service_percent"] == RATE_38


def test_percents_differing_only_in_the_20th_decimal_hash_differently(examples_dir: Path) -> None:
    first, second = (
        ok(vehicle_percent_variant(examples_dir, raw)).snapshot
        for raw in ("13.33333333333333333331", "13.33333333333333333332")
    )
    assert content_hash(first) != content_hash(second)


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "1" + "0" * 18, "0." + "1" * 51])
def test_a_percent_that_is_not_finite_or_too_long_is_final_invalid_response(
    examples_dir: Path, raw: str
) -> None:
    failure = failed(200, vehicle_percent_variant(examples_dir, raw))
    assert (failure.kind, failure.retryable) == (ErrorKind.INVALID_RESPONSE, False)


def test_summary_has_the_status_figures_as_json(examples_dir: Path) -> None:
    summary = summarize(ok(example(examples_dir, "saferwebapi-snapshot.json")))
    assert summary["usdot"] == "2847193"
    assert summary["operating_status"] == "ACTIVE"
    assert summary["safety_rating"] == "SATISFACTORY"
    assert summary["safety_rating_date"] == "2019-08-14"
    assert summary["latest_update"] == "2025-11-03"
    assert summary["dba_name"] is None
    assert summary["physical_address"] == "4410 W INDUSTRIAL PKWY DES MOINES, IA  50321"
    assert summary["phone"] == "(515) 555-0142"
    assert summary["mc_mx_ff_numbers"] == "MC-1034412"
    assert summary["us_inspections"] == {
        "vehicle": {
            "inspections": 6,
            "out_of_service": 1,
            "out_of_service_percent": "16.67",
            "national_average": "20.72",
        },
        "driver": {
            "inspections": 9,
            "out_of_service": 0,
            "out_of_service_percent": "0",
            "national_average": "5.51",
        },
        "hazmat": {
            "inspections": 0,
            "out_of_service": 0,
            "out_of_service_percent": "0",
            "national_average": "4.5",
        },
        "iep": {
            "inspections": 0,
            "out_of_service": 0,
            "out_of_service_percent": "0",
            "national_average": None,
        },
    }
    assert summary["canada_inspections"] == {
        "vehicle": {
            "inspections": 0,
            "out_of_service": 0,
            "out_of_service_percent": "0",
            "national_average": None,
        },
        "driver": {
            "inspections": 0,
            "out_of_service": 0,
            "out_of_service_percent": "0",
            "national_average": None,
        },
    }
    assert summary["us_crashes"] == {"fatal": 0, "injury": 0, "tow": 1, "total": 1}
    assert summary["canada_crashes"] == {"fatal": 0, "injury": 0, "tow": 0, "total": 0}
    json.dumps(summary)  # JSON-ready as is


def test_summary_of_a_name_only_snapshot_shows_unknowns_as_none() -> None:
    summary = summarize(ok({"usdot": "1", "legal_name": "NEW"}, dot="1"))
    assert summary["us_inspections"] is None
    assert summary["safety_rating"] is None
    assert summary["us_crashes"] is None


def test_a_fetch_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        InspectionsFetch(
            dot="1", retrieved_at=datetime(2025, 1, 1), upstream_as_of=None, snapshot=Snapshot(usdot=1)
        )
