"""The csa change facts: `detect_changes` between what was held and a new fetch, one fact per change."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from fmcsa_events.envelope import event_id
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ChangeKind
from fmcsa_source_csa.domain.changes import basic_subject, detect_changes, in_alert
from fmcsa_source_csa.domain.model import (
    BasicsAnswer,
    BasicScore,
    CarrierFacts,
    CsaFetch,
    Flag,
    FlagReason,
    PercentileStatus,
)
from fmcsa_source_csa.domain.parse import parse_basics

DOT = "2847193"
T0 = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=31)
REQUEST = UUID("00000000-0000-4000-8000-000000000013")
NOT_PUBLIC = Flag(None, FlagReason.NOT_PUBLIC)


def public(
    basics_id: int, percentile: str | None, *, threshold: int = 50, measure: str = "1.5"
) -> BasicScore:
    """A passenger carrier's BASIC with a public percentile and a consistent alert flag."""
    value = Decimal(percentile) if percentile is not None else None
    return BasicScore(
        basics_id=basics_id,
        code=None,
        name=None,
        percentile=value,
        percentile_status=PercentileStatus.PUBLIC,
        measure=Decimal(measure),
        threshold=threshold,
        intervention_alert=Flag(value is not None and value >= threshold),
        on_road_alert=Flag(False),
        serious_violation=Flag(False),
        inspections_with_violation=1,
        violations=1,
        run_date=None,
    )


def hidden(basics_id: int, *, threshold: int = 65, measure: str = "1.5") -> BasicScore:
    """A property carrier's BASIC: "Not Public" percentile, "-1" alert flag."""
    return replace(
        public(basics_id, None, threshold=threshold, measure=measure),
        percentile_status=PercentileStatus.NOT_PUBLIC,
        intervention_alert=NOT_PUBLIC,
        on_road_alert=NOT_PUBLIC,
    )


def fetch(*basics: BasicScore, at: datetime = T0) -> CsaFetch:
    return CsaFetch(
        dot=DOT,
        retrieved_at=at,
        upstream_as_of=datetime(at.year, at.month, 1, tzinfo=UTC),
        carrier=CarrierFacts(dot_number=int(DOT)),
        basics=basics,
    )


def changes(before: CsaFetch | None, after: CsaFetch) -> list[tuple[ChangeKind, str]]:
    return [(c.kind, c.subject) for c in detect_changes(before, after, request_id=REQUEST, observed_at=T1)]


def test_the_first_fetch_is_a_baseline_with_no_change() -> None:
    assert changes(None, fetch(public(11, "70"), hidden(15))) == []


def test_the_same_data_again_is_no_change() -> None:
    held = fetch(public(11, "34"), public(12, "61"), hidden(15))
    assert changes(held, replace(held, retrieved_at=T1)) == []


def test_a_moved_measure_alone_is_no_change() -> None:
    assert changes(fetch(hidden(11, measure="0.51")), fetch(hidden(11, measure="0.9"), at=T1)) == []
    assert changes(fetch(public(11, "34")), fetch(public(11, "34", measure="2.2"), at=T1)) == []


def test_a_moved_public_percentile_is_one_fact_with_before_and_after() -> None:
    [change] = detect_changes(
        fetch(public(11, "34", measure="1.5")),
        fetch(public(11, "41", measure="2.25"), at=T1),
        request_id=REQUEST,
        observed_at=T1,
    )
    assert (change.kind, change.subject, change.source, change.dot) == (
        ChangeKind.BASIC_PERCENTILE_CHANGED,
        "unsafe_driving",
        SourceKey.CSA,
        DOT,
    )
    assert change.before == {
        "percentile": "34",
        "status": "public",
        "measure": "1.5",
        "threshold": 50,
        "alert": False,
    }
    assert change.after == {
        "percentile": "41",
        "status": "public",
        "measure": "2.25",
        "threshold": 50,
        "alert": False,
    }
    assert (change.request_id, change.observed_at) == (REQUEST, T1)
    assert change.upstream_as_of == datetime(2025, 12, 1, tzinfo=UTC)
    assert event_id(change) == f"change:{REQUEST}:basic_percentile_changed:unsafe_driving"


def parsed(percentile: str, at: datetime = T0) -> CsaFetch:
    """A fetch whose BASIC 11 went through the parser with this `basicsPercentile` text."""
    entry = {
        "basicsPercentile": percentile,
        "basicsType": {"basicsId": 11},
        "basicsViolationThreshold": "65",
        "id": {"basicsId": 11, "dotNumber": int(DOT)},
        "measureValue": "0.51",
    }
    body = json.dumps({"content": [{"basic": entry}]}).encode()
    answer = parse_basics(200, {}, body, DOT, at)
    assert isinstance(answer, BasicsAnswer), answer
    return fetch(*answer.basics, at=at)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("57.00000000000000000001", "57.00000000000000000002"),  # the 20th decimal
        ("57.00000000000000000000000000000000000001", "57.00000000000000000000000000000000000002"),  # 38th
    ],
    ids=["20th-decimal", "38th-decimal"],
)
def test_a_percentile_moved_only_in_a_far_decimal_is_a_change_with_the_exact_values(
    before: str, after: str
) -> None:
    [change] = detect_changes(
        parsed(f"{before}%"), parsed(f"{after}%", T1), request_id=REQUEST, observed_at=T1
    )
    assert (change.kind, change.subject) == (ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving")
    assert isinstance(change.before, dict)
    assert isinstance(change.after, dict)
    assert (change.before["percentile"], change.after["percentile"]) == (before, after)
    assert changes(parsed(f"{after}%"), parsed(f"{after}%", T1)) == []


def test_crossing_the_threshold_upward_starts_an_alert() -> None:
    found = changes(fetch(public(11, "49")), fetch(public(11, "50"), at=T1))
    assert found == [
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving"),
        (ChangeKind.BASIC_ALERT_STARTED, "unsafe_driving"),
    ]


def test_crossing_the_threshold_downward_clears_the_alert() -> None:
    found = changes(fetch(public(11, "72")), fetch(public(11, "31"), at=T1))
    assert found == [
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving"),
        (ChangeKind.BASIC_ALERT_CLEARED, "unsafe_driving"),
    ]


def test_moving_above_the_threshold_without_crossing_it_starts_nothing() -> None:
    assert changes(fetch(public(15, "70", threshold=65)), fetch(public(15, "88", threshold=65), at=T1)) == [
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "vehicle_maintenance")
    ]


def test_the_percentile_decides_the_alert_even_when_the_flag_disagrees() -> None:
    lagging = replace(public(12, "61"), intervention_alert=Flag(False))
    assert in_alert(lagging) is True
    assert changes(fetch(public(12, "40")), fetch(lagging, at=T1)) == [
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "hos_compliance"),
        (ChangeKind.BASIC_ALERT_STARTED, "hos_compliance"),
    ]


def test_without_a_public_percentile_the_flag_decides_and_minus_one_is_unknown() -> None:
    assert in_alert(hidden(11)) is None
    assert in_alert(replace(hidden(11), intervention_alert=Flag(True))) is True
    assert in_alert(replace(public(11, "80"), threshold=None, intervention_alert=Flag(False))) is False
    assert in_alert(None) is None


def test_a_basic_that_turns_not_public_says_so_and_clears_no_alert() -> None:
    [change] = detect_changes(
        fetch(public(14, "70", threshold=65)),
        fetch(hidden(14, threshold=80), at=T1),
        request_id=REQUEST,
        observed_at=T1,
    )
    assert (change.kind, change.subject) == (
        ChangeKind.BASIC_BECAME_NOT_PUBLIC,
        "controlled_substances_alcohol",
    )
    assert change.before == {
        "percentile": "70",
        "status": "public",
        "measure": "1.5",
        "threshold": 65,
        "alert": True,
    }
    assert change.after == {
        "percentile": None,
        "status": "not_public",
        "measure": "1.5",
        "threshold": 80,
        "alert": None,
    }


def test_a_basic_that_turns_public_says_so_and_an_alert_above_the_threshold_starts() -> None:
    assert changes(fetch(hidden(13)), fetch(public(13, "20", threshold=65), at=T1)) == [
        (ChangeKind.BASIC_BECAME_PUBLIC, "driver_fitness")
    ]
    assert changes(fetch(hidden(13)), fetch(public(13, "90", threshold=65), at=T1)) == [
        (ChangeKind.BASIC_BECAME_PUBLIC, "driver_fitness"),
        (ChangeKind.BASIC_ALERT_STARTED, "driver_fitness"),
    ]


@pytest.mark.parametrize(
    "word", [PercentileStatus.INCONCLUSIVE, PercentileStatus.INSUFFICIENT_DATA, PercentileStatus.MISSING]
)
def test_any_hidden_percentile_is_not_public_for_the_change_facts(word: PercentileStatus) -> None:
    gone = replace(public(11, None), percentile_status=word)
    assert changes(fetch(public(11, "30")), fetch(gone, at=T1)) == [
        (ChangeKind.BASIC_BECAME_NOT_PUBLIC, "unsafe_driving")
    ]
    assert changes(fetch(gone), fetch(replace(gone, measure=Decimal("9")), at=T1)) == []


def test_a_public_basic_that_leaves_the_answer_became_not_public_with_no_after() -> None:
    [change] = detect_changes(
        fetch(public(11, "30"), public(12, "10")),
        fetch(public(12, "10"), at=T1),
        request_id=REQUEST,
        observed_at=T1,
    )
    assert (change.kind, change.subject, change.after) == (
        ChangeKind.BASIC_BECAME_NOT_PUBLIC,
        "unsafe_driving",
        None,
    )


def test_a_basic_new_to_the_answer_is_compared_with_nothing() -> None:
    assert changes(fetch(), fetch(public(15, "80", threshold=65), hidden(11), at=T1)) == [
        (ChangeKind.BASIC_BECAME_PUBLIC, "vehicle_maintenance"),
        (ChangeKind.BASIC_ALERT_STARTED, "vehicle_maintenance"),
    ]


def test_a_fetch_older_than_the_one_held_changes_nothing() -> None:
    assert changes(fetch(public(11, "70"), at=T1), fetch(public(11, "20"), at=T0)) == []


def test_facts_come_in_basic_id_order_and_unknown_ids_get_a_subject() -> None:
    before = fetch(public(15, "10"), public(11, "10"), public(41, "10"))
    after = fetch(public(41, "11"), public(15, "12"), public(11, "13"), at=T1)
    assert changes(before, after) == [
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving"),
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "vehicle_maintenance"),
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "basic_41"),
    ]
    assert [basic_subject(n) for n in range(11, 16)] == [
        "unsafe_driving",
        "hos_compliance",
        "driver_fitness",
        "controlled_substances_alcohol",
        "vehicle_maintenance",
    ]


def test_the_same_comparison_gives_the_same_facts_and_ids() -> None:
    before, after = fetch(public(11, "49"), hidden(12)), fetch(public(11, "55"), public(12, "60"), at=T1)
    first = detect_changes(before, after, request_id=REQUEST, observed_at=T1)
    again = detect_changes(before, after, request_id=REQUEST, observed_at=T1)
    assert first == again
    ids = [event_id(c) for c in first]
    assert len(set(ids)) == len(ids) == 4
