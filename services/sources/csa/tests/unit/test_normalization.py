"""Percentiles, flags, labels, numbers and dates as the fmcsa README 3.4-3.5 asks them normalized."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from fmcsa_source_csa.domain.model import (
    BasicsAnswer,
    CarrierFacts,
    Flag,
    FlagReason,
    PercentileStatus,
    SafetyRating,
    carrier_from_content,
)
from fmcsa_source_csa.domain.parse import (
    as_of_month,
    assemble,
    canonical_decimal,
    normalize_label,
    parse_basics,
    parse_carrier,
    parse_flag,
    parse_percentile,
    parse_timestamp,
)

NOW = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)
DOT = "2847193"


def carrier_body(**fields: Any) -> bytes:
    return json.dumps({"content": {"carrier": {"dotNumber": 2847193, **fields}}}).encode()


def basics_body(entries: list[dict[str, Any]], **envelope: Any) -> bytes:
    return json.dumps({"content": [{"basic": e} for e in entries], **envelope}).encode()


@pytest.mark.parametrize(
    ("raw", "percentile", "status"),
    [
        ("57%", Decimal(57), PercentileStatus.PUBLIC),
        ("0%", Decimal(0), PercentileStatus.PUBLIC),
        ("100%", Decimal(100), PercentileStatus.PUBLIC),
        ("57.50%", Decimal("57.5"), PercentileStatus.PUBLIC),
        (" 57 % ", Decimal(57), PercentileStatus.PUBLIC),
        ("Not Public", None, PercentileStatus.NOT_PUBLIC),
        ("NOT PUBLIC", None, PercentileStatus.NOT_PUBLIC),
        ("Inconclusive", None, PercentileStatus.INCONCLUSIVE),
        ("no violations", None, PercentileStatus.NO_VIOLATIONS),
        ("No Violations", None, PercentileStatus.NO_VIOLATIONS),
        ("Insufficient Data", None, PercentileStatus.INSUFFICIENT_DATA),
        ("insufficient_data", None, PercentileStatus.INSUFFICIENT_DATA),
        (None, None, PercentileStatus.MISSING),
        ("", None, PercentileStatus.MISSING),
        ("57", None, PercentileStatus.UNRECOGNIZED),
        ("N/A", None, PercentileStatus.UNRECOGNIZED),
        (57, None, PercentileStatus.UNRECOGNIZED),
        ("-5%", None, PercentileStatus.UNRECOGNIZED),
    ],
)
def test_percentiles_normalize_to_a_number_or_a_reason(
    raw: object, percentile: Decimal | None, status: PercentileStatus
) -> None:
    assert parse_percentile(raw) == (percentile, status)


@pytest.mark.parametrize(
    ("raw", "flag"),
    [
        ("Y", Flag(True)),
        ("N", Flag(False)),
        ("y", Flag(True)),
        ("-1", Flag(None, FlagReason.NOT_PUBLIC)),
        ("Not Public", Flag(None, FlagReason.NOT_PUBLIC)),
        (None, Flag(None, FlagReason.MISSING)),
        ("", Flag(None, FlagReason.MISSING)),
        ("maybe", Flag(None, FlagReason.UNRECOGNIZED)),
        (1, Flag(None, FlagReason.UNRECOGNIZED)),
    ],
)
def test_flags_are_true_false_or_none_with_a_reason(raw: object, flag: Flag) -> None:
    assert parse_flag(raw) == flag


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("Controlled Substances/&#8203;Alcohol", "Controlled Substances/Alcohol"),
        ("Controlled Substances/\u200bAlcohol", "Controlled Substances/Alcohol"),
        ("\ufeffVehicle Maint.", "Vehicle Maint."),
        ("Hours-of-Ser\u00advice  Compliance ", "Hours-of-Service Compliance"),
        ("Hazmat &amp; Compliance", "Hazmat & Compliance"),
        ("Unsafe\tDriving\n", "Unsafe Driving"),
    ],
)
def test_labels_are_unescaped_and_cleaned(raw: str, label: str) -> None:
    assert normalize_label(raw) == label


def test_an_absent_percentile_is_missing_and_an_odd_one_is_kept_as_unrecognized_with_a_note() -> None:
    entries = [
        {"basicsType": {"basicsId": 11}, "id": {"basicsId": 11, "dotNumber": 2847193}},
        {
            "basicsType": {"basicsId": 12},
            "basicsPercentile": "pending",
            "exceededFMCSAInterventionThreshold": "?",
        },
    ]
    answer = parse_basics(200, {}, basics_body(entries), DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    assert [b.percentile_status for b in answer.basics] == [
        PercentileStatus.MISSING,
        PercentileStatus.UNRECOGNIZED,
    ]
    assert answer.basics[0].intervention_alert == Flag(None, FlagReason.MISSING)
    assert answer.basics[0].measure is None
    assert len(answer.notes) == 2
    assert "pending" in answer.notes[0]


def test_an_unknown_basic_id_is_kept_with_its_labels() -> None:
    entry = {
        "basicsType": {
            "basicsId": 16,
            "basicsCode": "Crash Indicator",
            "basicsShortDesc": "Crash&nbsp;Indicator",
        }
    }
    answer = parse_basics(200, {}, basics_body([entry]), DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    assert (answer.basics[0].basics_id, answer.basics[0].name) == (16, "Crash Indicator")


def test_basics_are_ordered_by_id_whatever_order_they_come_in() -> None:
    entries = [{"basicsType": {"basicsId": i}} for i in (15, 11, 13)]
    answer = parse_basics(200, {}, basics_body(entries), DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    assert [b.basics_id for b in answer.basics] == [11, 13, 15]


def test_numbers_may_come_as_strings_or_numbers() -> None:
    entry = {
        "basicsType": {"basicsId": "11"},
        "measureValue": 0.18,
        "basicsViolationThreshold": 65,
        "totalViolation": "3",
    }
    answer = parse_basics(200, {}, basics_body([entry]), DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    score = answer.basics[0]
    assert (score.basics_id, score.measure, score.threshold, score.violations) == (11, Decimal("0.18"), 65, 3)


def test_the_frozen_run_date_is_kept_but_the_as_of_month_comes_from_the_retrieval_date() -> None:
    entry = {"basicsType": {"basicsId": 11}, "basicsRunDate": "2017-01-27T05:00:00.000+0000"}
    answer = parse_basics(
        200, {}, basics_body([entry], retrievalDate="2025-10-31T23:59:59.000+0000"), DOT, NOW
    )
    assert isinstance(answer, BasicsAnswer)
    assert answer.basics[0].run_date == datetime(2017, 1, 27, 5, tzinfo=UTC)
    fetch = assemble(DOT, CarrierFacts(dot_number=2847193), answer, NOW)
    assert fetch.upstream_as_of == datetime(2025, 10, 1, tzinfo=UTC)
    assert fetch.retrieved_at == NOW


def test_without_a_retrieval_date_the_as_of_month_is_our_clock_month() -> None:
    answer = parse_basics(200, {}, basics_body([], retrievalDate="soon"), DOT, NOW)
    assert isinstance(answer, BasicsAnswer)
    assert answer.retrieval_date is None
    fetch = assemble(DOT, CarrierFacts(dot_number=2847193), answer, NOW)
    assert fetch.upstream_as_of == datetime(2025, 11, 1, tzinfo=UTC)
    assert fetch.record_count == 1


def test_as_of_month_works_in_utc() -> None:
    from datetime import timedelta, timezone

    late_evening_in_new_york = datetime(2025, 10, 31, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert as_of_month(late_evening_in_new_york) == datetime(2025, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("2025-11-04T14:12:08.317+0000", datetime(2025, 11, 4, 14, 12, 8, 317000, tzinfo=UTC)),
        ("2025-11-04T14:12:08+00:00", datetime(2025, 11, 4, 14, 12, 8, tzinfo=UTC)),
        ("2025-11-04T09:12:08.000-0500", datetime(2025, 11, 4, 14, 12, 8, tzinfo=UTC)),
        ("2025-11-04T14:12:08", datetime(2025, 11, 4, 14, 12, 8, tzinfo=UTC)),
        ("", None),
        (None, None),
        ("04/11/2025 2pm", None),
    ],
)
def test_timestamps_parse_to_aware_utc(raw: object, parsed: datetime | None) -> None:
    assert parse_timestamp(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("0.50", "0.5"),
        ("10", "10"),
        ("1E+1", "10"),
        ("-0", "0"),
        ("16.666666666666664", "16.666666666666664"),
    ],
)
def test_decimals_have_one_spelling(raw: str, text: str) -> None:
    assert format(canonical_decimal(Decimal(raw)), "f") == text


def test_out_of_service_dates_are_read_in_both_documented_formats() -> None:
    iso = parse_carrier(200, {}, carrier_body(oosDate="2021-03-09"), DOT, NOW)
    us = parse_carrier(200, {}, carrier_body(oosDate="03/09/2021"), DOT, NOW)
    assert isinstance(iso, CarrierFacts)
    assert isinstance(us, CarrierFacts)
    assert iso.out_of_service_date == us.out_of_service_date == date(2021, 3, 9)


def test_unknown_insurance_requirement_u_is_none_and_y_n_are_booleans() -> None:
    facts = parse_carrier(
        200,
        {},
        carrier_body(cargoInsuranceRequired="u", bipdInsuranceRequired="Y", bondInsuranceRequired="N"),
        DOT,
        NOW,
    )
    assert isinstance(facts, CarrierFacts)
    assert (facts.cargo_insurance_required, facts.bipd_insurance_required, facts.bond_insurance_required) == (
        None,
        True,
        False,
    )


def test_a_bare_carrier_is_all_none_and_unknown_keys_are_ignored() -> None:
    facts = parse_carrier(
        200, {}, carrier_body(somethingNew={"x": 1}, issScore=None, snapshotDate=None), DOT, NOW
    )
    assert facts == CarrierFacts(dot_number=2847193)


def test_a_carrier_without_dot_number_is_taken_as_the_requested_one() -> None:
    body = json.dumps({"content": {"carrier": {"legalName": "X"}}}).encode()
    facts = parse_carrier(200, {}, body, DOT, NOW)
    assert isinstance(facts, CarrierFacts)
    assert facts.dot_number == 2847193


def test_safety_rating_and_authority_codes_are_enums_and_null_means_not_rated() -> None:
    rated = parse_carrier(200, {}, carrier_body(safetyRating="c", commonAuthorityStatus="I"), DOT, NOW)
    unrated = parse_carrier(200, {}, carrier_body(safetyRating=None), DOT, NOW)
    assert isinstance(rated, CarrierFacts)
    assert isinstance(unrated, CarrierFacts)
    assert rated.safety_rating is SafetyRating.CONDITIONAL
    assert rated.common_authority == "I"
    assert unrated.safety_rating is None


def test_carrier_facts_round_trip_through_their_stored_content(examples_dir: Any) -> None:
    facts = parse_carrier(200, {}, (examples_dir / "qcmobile-carrier.json").read_bytes(), DOT, NOW)
    assert isinstance(facts, CarrierFacts)
    assert carrier_from_content(json.loads(json.dumps(facts.content()))) == facts
