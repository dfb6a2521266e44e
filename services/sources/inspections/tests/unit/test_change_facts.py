"""The inspections change facts: operating status, safety rating, crashes and out-of-service rates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from fmcsa_events.envelope import event_id
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ChangeKind
from fmcsa_source_inspections.domain.changes import detect_changes
from fmcsa_source_inspections.domain.parse import parse_response
from fmcsa_source_inspections.domain.records import InspectionsFetch

DOT = "2847193"
T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=7)
REQUEST = UUID("00000000-0000-4000-8000-000000000013")


@pytest.fixture
def body(examples_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((examples_dir / "saferwebapi-snapshot.json").read_bytes())
    return loaded


def fetch_of(body: dict[str, Any], at: datetime = T0) -> InspectionsFetch:
    result = parse_response(200, {}, json.dumps(body).encode(), DOT, at)
    assert isinstance(result, InspectionsFetch), result
    return result


def changed(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A deep copy of `body` with top-level fields replaced and `latest_update` moved on."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    copy.update(fields)
    copy["latest_update"] = "11/10/2025"
    return copy


def facts(
    before: dict[str, Any] | None, after: dict[str, Any], **options: Any
) -> list[tuple[ChangeKind, str]]:
    held = None if before is None else fetch_of(before)
    found = detect_changes(held, fetch_of(after, T1), request_id=REQUEST, observed_at=T1, **options)
    return [(c.kind, c.subject) for c in found]


def test_the_first_snapshot_is_a_baseline_with_no_change(body: dict[str, Any]) -> None:
    assert facts(None, body) == []


def test_the_same_snapshot_again_is_no_change(body: dict[str, Any]) -> None:
    assert facts(body, body) == []
    assert facts(body, changed(body)) == []  # only latest_update moved


def test_an_operating_status_change_is_one_fact_with_before_and_after(body: dict[str, Any]) -> None:
    after = changed(body, operating_status="OUT-OF-SERVICE", out_of_service_date="11/07/2025")
    [change] = detect_changes(fetch_of(body), fetch_of(after, T1), request_id=REQUEST, observed_at=T1)
    assert (change.kind, change.subject, change.source, change.dot) == (
        ChangeKind.OPERATING_STATUS_CHANGED,
        "operating_status",
        SourceKey.INSPECTIONS,
        DOT,
    )
    assert change.before == {"status": "ACTIVE", "out_of_service_date": None}
    assert change.after == {"status": "OUT-OF-SERVICE", "out_of_service_date": "2025-11-07"}
    assert change.upstream_as_of == datetime(2025, 11, 10, tzinfo=UTC)
    assert (change.observed_at, change.request_id) == (T1, REQUEST)
    assert event_id(change) == f"change:{REQUEST}:operating_status_changed:operating_status"


def test_an_operating_status_the_upstream_left_out_is_not_a_change(body: dict[str, Any]) -> None:
    assert facts(body, changed(body, operating_status=None)) == []
    assert facts(changed(body, operating_status=None), body) == [
        (ChangeKind.OPERATING_STATUS_CHANGED, "operating_status")
    ]


def test_a_safety_rating_change_is_one_fact(body: dict[str, Any]) -> None:
    after = changed(body, safety_rating="CONDITIONAL", safety_rating_date="11/05/2025")
    [change] = detect_changes(fetch_of(body), fetch_of(after, T1), request_id=REQUEST, observed_at=T1)
    assert (change.kind, change.subject) == (ChangeKind.SAFETY_RATING_CHANGED, "safety_rating")
    assert change.before == {"rating": "SATISFACTORY", "rating_date": "2019-08-14"}
    assert change.after == {"rating": "CONDITIONAL", "rating_date": "2025-11-05"}


def test_a_first_rating_and_a_re_rating_with_the_same_rating_are_changes(body: dict[str, Any]) -> None:
    unrated = changed(body, safety_rating=None, safety_rating_date=None)
    assert facts(unrated, body) == [(ChangeKind.SAFETY_RATING_CHANGED, "safety_rating")]
    assert facts(body, changed(body, safety_rating_date="10/01/2025")) == [
        (ChangeKind.SAFETY_RATING_CHANGED, "safety_rating")
    ]


def test_a_rating_the_upstream_stops_naming_is_not_read_as_withdrawn(body: dict[str, Any]) -> None:
    assert facts(body, changed(body, safety_rating=None, safety_rating_date=None)) == []


def test_new_us_and_canada_crashes_are_added_facts(body: dict[str, Any]) -> None:
    after = changed(
        body,
        united_states_crashes={"fatal": 0, "injury": 1, "tow": 1, "total": 2},
        canada_crashes={"fatal": 0, "injury": 0, "tow": 1, "total": 1},
    )
    found = detect_changes(fetch_of(body), fetch_of(after, T1), request_id=REQUEST, observed_at=T1)
    assert [(c.kind, c.subject, c.before, c.after) for c in found] == [
        (
            ChangeKind.CRASHES_ADDED,
            "us",
            {"fatal": 0, "injury": 0, "tow": 1, "total": 1},
            {"fatal": 0, "injury": 1, "tow": 1, "total": 2},
        ),
        (
            ChangeKind.CRASHES_ADDED,
            "canada",
            {"fatal": 0, "injury": 0, "tow": 0, "total": 0},
            {"fatal": 0, "injury": 0, "tow": 1, "total": 1},
        ),
    ]


def test_crashes_leaving_the_window_or_unknown_totals_are_not_added(body: dict[str, Any]) -> None:
    fewer = changed(body, united_states_crashes={"fatal": 0, "injury": 0, "tow": 0, "total": 0})
    assert facts(body, fewer) == []
    assert facts(changed(body, united_states_crashes=None), body) == []
    assert facts(body, changed(body, united_states_crashes=None)) == []


def with_oos(body: dict[str, Any], group: str, percent: str, inspections: int, oos: int) -> dict[str, Any]:
    after = changed(body)
    after["us_inspections"][group].update(
        {"out_of_service_percent": percent, "inspections": inspections, "out_of_service": oos}
    )
    return after


def test_an_oos_rate_moving_by_the_threshold_is_a_fact_and_a_smaller_move_is_not(
    body: dict[str, Any],
) -> None:
    # the example's vehicle rate is 16.67% (1 of 6)
    assert facts(body, with_oos(body, "vehicle", "21.66%", 6, 1)) == []
    assert facts(body, with_oos(body, "vehicle", "21.67%", 6, 1)) == [
        (ChangeKind.OOS_RATE_CHANGED, "us_vehicle")
    ]
    [change] = detect_changes(
        fetch_of(body),
        fetch_of(with_oos(body, "vehicle", "28.57%", 7, 2), T1),
        request_id=REQUEST,
        observed_at=T1,
    )
    assert change.before == {
        "percent": "16.67",
        "inspections": 6,
        "out_of_service": 1,
        "national_average": "20.72",
    }
    assert change.after == {
        "percent": "28.57",
        "inspections": 7,
        "out_of_service": 2,
        "national_average": "20.72",
    }


def raw_vehicle_percent(body: dict[str, Any], percent: str, at: datetime) -> InspectionsFetch:
    """`body` parsed with the US vehicle out-of-service percent served as the raw JSON number `percent`."""
    copy = changed(body)
    copy["us_inspections"]["vehicle"]["out_of_service_percent"] = "@percent@"
    raw = json.dumps(copy).replace('"@percent@"', percent).encode()
    result = parse_response(200, {}, raw, DOT, at)
    assert isinstance(result, InspectionsFetch), result
    return result


@pytest.mark.parametrize(
    ("before", "after", "is_fact"),
    [
        ("10.00000000000000000001", "15", False),  # moved 4.99999999999999999999: a float reads 5
        ("10", "15.00000000000000000001", True),
        ("10.000000000000000000000000000001", "15", False),  # 28-digit arithmetic would round to 5
        ("10.000000000000000000000000000001", "15.000000000000000000000000000001", True),
        ("15", "10.000000000000000000000000000001", False),
    ],
)
def test_the_oos_move_is_measured_exactly_against_the_threshold(
    body: dict[str, Any], before: str, after: str, is_fact: bool
) -> None:
    found = detect_changes(
        raw_vehicle_percent(body, before, T0),
        raw_vehicle_percent(body, after, T1),
        request_id=REQUEST,
        observed_at=T1,
    )
    assert [(c.kind, c.subject) for c in found] == (
        [(ChangeKind.OOS_RATE_CHANGED, "us_vehicle")] if is_fact else []
    )
    for change in found:
        assert isinstance(change.before, dict)
        assert isinstance(change.after, dict)
        assert (change.before["percent"], change.after["percent"]) == (before, after)


def test_an_oos_rate_falling_by_the_threshold_is_a_fact_too(body: dict[str, Any]) -> None:
    assert facts(body, with_oos(body, "vehicle", "11.11%", 9, 1)) == [
        (ChangeKind.OOS_RATE_CHANGED, "us_vehicle")
    ]


def test_the_driver_rate_is_its_own_subject_and_hazmat_is_not_watched(body: dict[str, Any]) -> None:
    after = with_oos(body, "driver", "10%", 10, 1)
    after["us_inspections"]["hazmat"]["out_of_service_percent"] = "50%"
    assert facts(body, after) == [(ChangeKind.OOS_RATE_CHANGED, "us_driver")]


def test_the_oos_threshold_is_configurable(body: dict[str, Any]) -> None:
    after = with_oos(body, "vehicle", "18.67%", 6, 1)  # two points up
    assert facts(body, after) == []
    assert facts(body, after, oos_rate_change_points=Decimal(2)) == [
        (ChangeKind.OOS_RATE_CHANGED, "us_vehicle")
    ]
    with pytest.raises(ValueError, match="positive"):
        facts(body, after, oos_rate_change_points=Decimal(0))


def test_an_unknown_oos_rate_on_either_side_is_no_fact(body: dict[str, Any]) -> None:
    assert facts(body, with_oos(body, "vehicle", "N/A", 0, 0)) == []
    assert facts(with_oos(body, "vehicle", "N/A", 0, 0), body) == []


def test_a_fetch_older_than_the_one_held_changes_nothing(body: dict[str, Any]) -> None:
    newer = fetch_of(changed(body, operating_status="OUT-OF-SERVICE"), T1)
    assert detect_changes(newer, fetch_of(body, T0), request_id=REQUEST, observed_at=T0) == []


def test_every_kind_at_once_comes_in_a_fixed_order(body: dict[str, Any]) -> None:
    after = with_oos(body, "driver", "20%", 10, 2)
    after["us_inspections"]["vehicle"]["out_of_service_percent"] = "40%"
    after.update(
        operating_status="NOT AUTHORIZED",
        safety_rating="UNSATISFACTORY",
        united_states_crashes={"fatal": 1, "injury": 0, "tow": 1, "total": 2},
    )
    assert facts(body, after) == [
        (ChangeKind.OPERATING_STATUS_CHANGED, "operating_status"),
        (ChangeKind.SAFETY_RATING_CHANGED, "safety_rating"),
        (ChangeKind.CRASHES_ADDED, "us"),
        (ChangeKind.OOS_RATE_CHANGED, "us_vehicle"),
        (ChangeKind.OOS_RATE_CHANGED, "us_driver"),
    ]
