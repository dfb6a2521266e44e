"""Every QCMobile example file and every row of the fmcsa README 3.9 classification table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fmcsa_events.models import ErrorKind
from fmcsa_source_csa.domain.model import (
    BasicsAnswer,
    Call,
    CarrierFacts,
    PercentileStatus,
    carrier_from_content,
)
from fmcsa_source_csa.domain.parse import classify, parse_basics, parse_carrier
from fmcsa_source_kit.failures import Failure

NOW = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)
CARRIER_DOT = "2847193"
PASSENGER_DOT = "1398452"


def body_of(examples_dir: Path, name: str) -> bytes:
    return (examples_dir / name).read_bytes()


def failed(result: object, kind: ErrorKind, *, retryable: bool) -> Failure:
    assert isinstance(result, Failure), result
    assert (result.kind, result.retryable) == (kind, retryable), result
    return result


def envelope(content: Any, **extra: Any) -> bytes:
    return json.dumps({"content": content, "retrievalDate": "2025-11-04T14:12:08.317+0000", **extra}).encode()


def basics_body(*entries: dict[str, Any]) -> bytes:
    return envelope([{"basic": entry, "dotNumber": None} for entry in entries])


def basic(basics_id: int = 11, dot: int = 2847193, **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "basicsPercentile": "57%",
        "basicsRunDate": "2017-01-27T05:00:00.000+0000",
        "basicsType": {
            "basicsCode": "Unsafe Driving",
            "basicsId": basics_id,
            "basicsShortDesc": "Unsafe Driving",
        },
        "basicsViolationThreshold": "65",
        "exceededFMCSAInterventionThreshold": "N",
        "id": {"basicsId": basics_id, "dotNumber": dot},
        "measureValue": "0.51",
        "onRoadPerformanceThresholdViolationIndicator": "N",
        "seriousViolationFromInvestigationPast12MonthIndicator": "N",
        "totalInspectionWithViolation": 1,
        "totalViolation": 1,
    }
    entry.update(fields)
    return entry


# --- the example files (fmcsa README section 6) ---------------------------------------------------


def test_the_carrier_example_parses_into_facts_without_the_tax_id(examples_dir: Path) -> None:
    facts = parse_carrier(200, {}, body_of(examples_dir, "qcmobile-carrier.json"), CARRIER_DOT, NOW)
    assert isinstance(facts, CarrierFacts)
    assert facts.dot_number == 2847193
    assert facts.legal_name == "NORTHFIELD FREIGHT LINES LLC"
    assert facts.vehicle_oos_rate == Decimal("16.666666666666664")
    assert facts.driver_oos_rate_national_average == Decimal("5.51")
    assert (facts.driver_inspections, facts.vehicle_inspections, facts.crash_total) == (9, 6, 1)
    assert "ein" not in facts.content()
    assert "824417093" not in json.dumps(facts.content())


RATE_38 = "16.66666666666666666666666666666666666667"  # an OOS rate as QCMobile serves it: 38 decimals


def with_raw_numbers(document: Any, numbers: dict[str, str]) -> bytes:
    """`document` as JSON with each `"@name@"` string replaced by the raw number text `numbers[name]`
    (json.dumps cannot write a 38-decimal number).
    """
    text = json.dumps(document)
    for name, raw in numbers.items():
        text = text.replace(f'"@{name}@"', raw)
    return text.encode()


def carrier_variant(examples_dir: Path, **numbers: str) -> bytes:
    """The carrier example with some carrier fields served as the given raw JSON numbers."""
    document = json.loads(body_of(examples_dir, "qcmobile-carrier.json"))
    for name in numbers:
        document["content"]["carrier"][name] = f"@{name}@"
    return with_raw_numbers(document, numbers)


def test_a_38_decimal_oos_rate_json_number_is_read_exactly(examples_dir: Path) -> None:
    body = carrier_variant(
        examples_dir, vehicleOosRate=RATE_38, driverOosRate="0.1000000000000000000000000000000001"
    )
    facts = parse_carrier(200, {}, body, CARRIER_DOT, NOW)
    assert isinstance(facts, CarrierFacts)
    assert facts.vehicle_oos_rate == Decimal(RATE_38)
    assert facts.driver_oos_rate == Decimal("0.1000000000000000000000000000000001")
    assert facts.content()["vehicle_oos_rate"] == RATE_38  # what the store keeps and hashes
    assert carrier_from_content(json.loads(json.dumps(facts.content()))) == facts


def test_a_tiny_oos_rate_is_kept_as_plain_decimal_text(examples_dir: Path) -> None:
    facts = parse_carrier(200, {}, carrier_variant(examples_dir, hazmatOosRate="1E-7"), CARRIER_DOT, NOW)
    assert isinstance(facts, CarrierFacts)
    assert facts.hazmat_oos_rate == Decimal("0.0000001")
    assert facts.content()["hazmat_oos_rate"] == "0.0000001"  # not str(Decimal): "1E-7"
    assert carrier_from_content(facts.content()) == facts


def test_oos_rates_differing_only_in_the_20th_decimal_are_different_content(examples_dir: Path) -> None:
    first, second = (
        parse_carrier(200, {}, carrier_variant(examples_dir, vehicleOosRate=raw), CARRIER_DOT, NOW)
        for raw in ("13.33333333333333333331", "13.33333333333333333332")
    )
    assert isinstance(first, CarrierFacts)
    assert isinstance(second, CarrierFacts)
    assert first.vehicle_oos_rate != second.vehicle_oos_rate
    assert first.content_hash() != second.content_hash()


def test_a_38_decimal_measure_and_percentile_are_read_exactly() -> None:
    measure = "0.51000000000000000000000000000000000001"
    percentile = "57.00000000000000000000000000000000000001"
    entries = [
        basic(11, measureValue=measure, basicsPercentile=f"{percentile}%"),
        basic(12, measureValue="@measure@"),
    ]
    body = with_raw_numbers(
        {"content": [{"basic": e, "dotNumber": None} for e in entries]}, {"measure": RATE_38}
    )
    answer = parse_basics(200, {}, body, CARRIER_DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    first, second = answer.basics
    assert (first.measure, first.percentile) == (Decimal(measure), Decimal(percentile))
    assert first.content()["percentile"] == percentile
    assert second.measure == Decimal(RATE_38)


def test_the_passenger_basics_example_has_public_percentiles(examples_dir: Path) -> None:
    answer = parse_basics(200, {}, body_of(examples_dir, "qcmobile-basics.json"), PASSENGER_DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    assert [b.basics_id for b in answer.basics] == [11, 12, 13, 14, 15]
    assert [b.percentile for b in answer.basics] == [Decimal(34), Decimal(61), 0, 0, Decimal(72)]
    assert {b.percentile_status for b in answer.basics} == {PercentileStatus.PUBLIC}
    hos = answer.basics[1]
    assert (hos.intervention_alert.value, hos.on_road_alert.value, hos.threshold) == (True, True, 50)
    assert answer.basics[3].name == "Controlled Substances/Alcohol"
    assert answer.retrieval_date == datetime(2025, 11, 4, 14, 12, 9, 126000, tzinfo=UTC)
    assert answer.notes == ()


def test_the_property_basics_example_is_not_public_but_keeps_measures(examples_dir: Path) -> None:
    answer = parse_basics(200, {}, body_of(examples_dir, "qcmobile-basics-not-public.json"), CARRIER_DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    assert {(b.percentile, b.percentile_status) for b in answer.basics} == {
        (None, PercentileStatus.NOT_PUBLIC)
    }
    assert all(b.intervention_alert.value is None for b in answer.basics)
    assert {b.intervention_alert.reason for b in answer.basics} == {"not_public"}
    assert {b.on_road_alert.reason for b in answer.basics} == {"not_public"}
    assert [b.measure for b in answer.basics] == [Decimal("0.51"), Decimal("0.56"), 0, 0, Decimal("4.5")]
    assert answer.basics[4].violations == 3


def test_the_empty_basics_example_is_a_success_with_no_basics(examples_dir: Path) -> None:
    answer = parse_basics(200, {}, body_of(examples_dir, "qcmobile-basics-empty.json"), CARRIER_DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    assert answer.basics == ()


def test_an_empty_content_on_the_carrier_call_is_not_found(examples_dir: Path) -> None:
    result = parse_carrier(200, {}, body_of(examples_dir, "qcmobile-basics-empty.json"), CARRIER_DOT, NOW)
    failed(result, ErrorKind.NOT_FOUND, retryable=False)


def test_the_unknown_carrier_example_is_not_found(examples_dir: Path) -> None:
    result = parse_carrier(200, {}, body_of(examples_dir, "qcmobile-carrier-unknown.json"), "99000001", NOW)
    assert "99000001" in failed(result, ErrorKind.NOT_FOUND, retryable=False).message


@pytest.mark.parametrize("name", ["qcmobile-webkey-not-found.json", "qcmobile-webkey-missing.json"])
@pytest.mark.parametrize("call", [parse_carrier, parse_basics])
def test_the_webkey_examples_are_not_configured_not_not_found(
    examples_dir: Path, name: str, call: Any
) -> None:
    failed(
        call(404, {}, body_of(examples_dir, name), CARRIER_DOT, NOW),
        ErrorKind.NOT_CONFIGURED,
        retryable=False,
    )


def test_the_maintenance_page_with_200_is_a_retryable_upstream_error(examples_dir: Path) -> None:
    result = parse_carrier(200, {}, body_of(examples_dir, "qcmobile-maintenance.html"), CARRIER_DOT, NOW)
    assert "maintenance" in failed(result, ErrorKind.UPSTREAM_ERROR, retryable=True).message


@pytest.mark.parametrize(
    "name", ["qcmobile-oos.json", "qcmobile-authority.json", "qcmobile-docket-numbers.json"]
)
def test_the_other_sub_resource_examples_are_usable_envelopes(examples_dir: Path, name: str) -> None:
    result = classify(Call.BASICS, 200, {}, body_of(examples_dir, name), CARRIER_DOT, NOW)
    assert isinstance(result, dict)
    assert isinstance(result["content"], list)


def test_every_qcmobile_example_file_is_covered(examples_dir: Path) -> None:
    covered = {
        "qcmobile-carrier.json",
        "qcmobile-basics.json",
        "qcmobile-basics-not-public.json",
        "qcmobile-basics-empty.json",
        "qcmobile-carrier-unknown.json",
        "qcmobile-webkey-not-found.json",
        "qcmobile-webkey-missing.json",
        "qcmobile-maintenance.html",
        "qcmobile-oos.json",
        "qcmobile-authority.json",
        "qcmobile-docket-numbers.json",
    }
    assert {p.name for p in examples_dir.glob("qcmobile-*")} == covered


# --- the classification table (README 3.9), in its order -----------------------------------------


def test_429_is_rate_limited_with_the_retry_after_it_sent() -> None:
    result = parse_carrier(429, {"retry-after": "7"}, b"Too Many Requests", CARRIER_DOT, NOW)
    assert failed(result, ErrorKind.RATE_LIMITED, retryable=True).retry_after_s == 7.0


def test_429_retry_after_may_be_an_http_date_and_is_clamped_to_the_ceiling() -> None:
    dated = parse_carrier(429, {"Retry-After": "Tue, 04 Nov 2025 15:00:30 GMT"}, b"", CARRIER_DOT, NOW)
    assert failed(dated, ErrorKind.RATE_LIMITED, retryable=True).retry_after_s == 30.0
    huge = parse_carrier(429, {"Retry-After": "86400"}, b"", CARRIER_DOT, NOW, retry_after_max_s=60)
    assert failed(huge, ErrorKind.RATE_LIMITED, retryable=True).retry_after_s == 60.0


def test_429_without_retry_after_leaves_the_wait_to_backoff() -> None:
    result = parse_basics(429, {}, b"Too Many Requests", CARRIER_DOT, NOW)
    assert failed(result, ErrorKind.RATE_LIMITED, retryable=True).retry_after_s is None


def test_429_is_checked_before_the_body() -> None:
    result = parse_carrier(429, {}, envelope("Webkey not found"), CARRIER_DOT, NOW)
    failed(result, ErrorKind.RATE_LIMITED, retryable=True)


def test_content_is_read_before_the_status_so_a_bad_key_on_404_is_not_configured() -> None:
    failed(
        parse_carrier(404, {}, envelope("Webkey not found"), CARRIER_DOT, NOW),
        ErrorKind.NOT_CONFIGURED,
        retryable=False,
    )


def test_a_key_refused_with_200_is_not_configured() -> None:
    body = envelope("Webkey not found or not authorized")
    failed(parse_basics(200, {}, body, CARRIER_DOT, NOW), ErrorKind.NOT_CONFIGURED, retryable=False)


def test_another_string_content_is_an_upstream_error_carrying_the_string() -> None:
    result = failed(
        parse_carrier(200, {}, envelope("Service temporarily degraded"), CARRIER_DOT, NOW),
        ErrorKind.UPSTREAM_ERROR,
        retryable=False,
    )
    assert "Service temporarily degraded" in result.message


def test_a_string_content_on_a_5xx_is_retried() -> None:
    failed(
        parse_carrier(503, {}, envelope("Try later"), CARRIER_DOT, NOW),
        ErrorKind.UPSTREAM_ERROR,
        retryable=True,
    )


def test_content_null_with_404_is_not_found() -> None:
    failed(parse_carrier(404, {}, envelope(None), CARRIER_DOT, NOW), ErrorKind.NOT_FOUND, retryable=False)


def test_a_tiny_html_403_from_a_cloud_edge_is_a_final_upstream_error() -> None:
    body = b"<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1></body></html>"
    failed(parse_carrier(403, {}, body, CARRIER_DOT, NOW), ErrorKind.UPSTREAM_ERROR, retryable=False)


@pytest.mark.parametrize("body", [b"{}", b"<html><body>Bad Gateway</body></html>", b""])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_with_json_html_or_nothing_is_a_retryable_upstream_error(status: int, body: bytes) -> None:
    failed(parse_basics(status, {}, body, CARRIER_DOT, NOW), ErrorKind.UPSTREAM_ERROR, retryable=True)


@pytest.mark.parametrize("status", [400, 401, 405, 410, 451])
def test_other_4xx_is_a_final_upstream_error(status: int) -> None:
    failed(
        parse_carrier(status, {}, b'{"error": "nope"}', CARRIER_DOT, NOW),
        ErrorKind.UPSTREAM_ERROR,
        retryable=False,
    )


def test_414_means_our_url_is_too_long_an_internal_error() -> None:
    failed(parse_carrier(414, {}, b"URI Too Long", CARRIER_DOT, NOW), ErrorKind.INTERNAL, retryable=False)


@pytest.mark.parametrize(
    "body", [b"<html>hello</html>", b'{"content": {"carrier": {"dotNu', b"", b"\xff\xfe"]
)
def test_200_that_is_not_json_or_cut_short_is_a_retryable_invalid_response(body: bytes) -> None:
    failed(parse_carrier(200, {}, body, CARRIER_DOT, NOW), ErrorKind.INVALID_RESPONSE, retryable=True)


@pytest.mark.parametrize(
    "body",
    [
        envelope({"_links": {}}),
        envelope({"carrier": "yes"}),
        envelope([{"carrier": {}}]),
        b"[1, 2, 3]",
        b'{"retrievalDate": "2025-11-04T14:12:08.317+0000"}',
        envelope({"carrier": {"dotNumber": 1234567}}),
        envelope({"carrier": {"dotNumber": 2847193, "totalDrivers": "many"}}),
        envelope({"carrier": {"dotNumber": 2847193, "allowedToOperate": "maybe"}}),
        envelope({"carrier": {"dotNumber": 2847193, "safetyRating": "X"}}),
        envelope({"carrier": {"dotNumber": 2847193, "commonAuthorityStatus": "Q"}}),
        envelope({"carrier": {"dotNumber": 2847193, "oosDate": "yesterday"}}),
        envelope({"carrier": {"dotNumber": 2847193, "vehicleOosRate": 140}}),
        envelope({"carrier": {"dotNumber": 2847193, "vehicleOosRate": float("nan")}}),
        envelope({"carrier": {"dotNumber": 2847193, "vehicleOosRate": "0." + "1" * 51}}),
    ],
    ids=[
        "no-carrier",
        "carrier-not-object",
        "content-array",
        "not-an-object",
        "no-content",
        "other-dot",
        "bad-count",
        "bad-flag",
        "bad-rating",
        "bad-authority",
        "bad-date",
        "rate-above-100",
        "rate-nan",
        "rate-beyond-50-decimals",
    ],
)
def test_carrier_json_of_the_wrong_shape_is_a_final_invalid_response(body: bytes) -> None:
    failed(parse_carrier(200, {}, body, CARRIER_DOT, NOW), ErrorKind.INVALID_RESPONSE, retryable=False)


@pytest.mark.parametrize(
    "body",
    [
        envelope({"basic": basic()}),
        envelope([{"nobasic": {}}]),
        envelope(["x"]),
        basics_body(basic(dot=1234567)),
        basics_body(basic(measureValue="abc")),
        basics_body(basic(basicsViolationThreshold="sixty")),
        basics_body(basic(totalViolation=-1)),
        basics_body(basic(totalViolation=1.5)),
        basics_body(basic(basicsPercentile="101%")),
        basics_body(basic(basicsPercentile="5." + "1" * 51 + "%")),
        basics_body(basic(measureValue="1" + "0" * 18)),
        basics_body(basic(basicsRunDate="last year")),
        basics_body(basic(11), basic(11)),
        basics_body(basic(basicsType={}, id={"dotNumber": 2847193})),
        basics_body(basic(11, id={"basicsId": 12, "dotNumber": 2847193})),
    ],
    ids=[
        "content-object",
        "no-basic",
        "entry-not-object",
        "other-dot",
        "bad-measure",
        "bad-threshold",
        "negative-count",
        "fractional-count",
        "percentile-above-100",
        "percentile-beyond-50-decimals",
        "measure-beyond-18-digits",
        "bad-run-date",
        "repeated-id",
        "no-id",
        "two-ids",
    ],
)
def test_basics_json_of_the_wrong_shape_is_a_final_invalid_response(body: bytes) -> None:
    failed(parse_basics(200, {}, body, CARRIER_DOT, NOW), ErrorKind.INVALID_RESPONSE, retryable=False)


def test_failure_details_carry_the_status_and_a_short_body_sample() -> None:
    body = b"<html>" + b"x" * 5000 + b"</html>"
    result = failed(parse_carrier(502, {}, body, CARRIER_DOT, NOW), ErrorKind.UPSTREAM_ERROR, retryable=True)
    assert "status=502" in result.detail
    assert "call=carrier" in result.detail
    assert len(result.detail) < 300


def test_a_failure_detail_never_shows_the_tax_id(examples_dir: Path) -> None:
    raw = json.loads(body_of(examples_dir, "qcmobile-carrier.json"))
    raw["content"]["carrier"]["dotNumber"] = 1  # wrong DOT: the detail will sample the body
    compact = {"content": {"carrier": {"ein": 824417093, **raw["content"]["carrier"]}}}
    result = parse_carrier(200, {}, json.dumps(compact).encode(), CARRIER_DOT, NOW)
    detail = failed(result, ErrorKind.INVALID_RESPONSE, retryable=False).detail
    assert '"ein"' in detail
    assert "824417093" not in detail
