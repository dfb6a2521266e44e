"""The violations change facts: rows added to and aged out of a carrier's window, before and after."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from violations_support import DOT, row

from fmcsa_events.envelope import event_id
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ChangeKind
from fmcsa_source_violations.domain.changes import detect_changes, violation_totals
from fmcsa_source_violations.domain.model import Violation, ViolationsFetch
from fmcsa_source_violations.domain.parse import assign_ordinals

T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=31)
AS_OF = datetime(2025, 11, 21, 9, 12, 44, tzinfo=UTC)
REQUEST = UUID("00000000-0000-4000-8000-000000000013")


def window() -> list[Violation]:
    return [
        row(viol_code="39347E", oos_indicator="true", oos_weight="2", viol_unit="1"),
        row(),
        row(unique_id="897734501", insp_date="14-MAR-25", basic_desc="Hours-of-Service Compliance"),
        row(unique_id="871150296", insp_date="19-JUN-24", basic_desc="Unsafe Driving", viol_unit="D"),
    ]


def fetch(rows: list[Violation], *, at: datetime = T0) -> ViolationsFetch:
    return ViolationsFetch(dot=DOT, retrieved_at=at, upstream_as_of=AS_OF, records=assign_ordinals(rows))


NEW_OOS = row(
    unique_id="912000777",
    insp_date="28-OCT-25",
    viol_code="3965A",
    oos_indicator="true",
    oos_weight="2",
    basic_desc="Unsafe Driving",
    viol_unit="D",
)


def test_the_first_read_is_a_baseline_with_no_change() -> None:
    assert detect_changes(None, fetch(window()), request_id=REQUEST, observed_at=T0) == []


def test_the_same_rows_again_in_any_order_are_no_change() -> None:
    held = fetch(window())
    again = fetch(list(reversed(window())), at=T1)
    assert detect_changes(held, again, request_id=REQUEST, observed_at=T1) == []


def test_a_time_weight_step_is_no_change() -> None:
    stepped = [replace(v, time_weight=1, total_severity_wght=6) for v in window()]
    assert detect_changes(fetch(window()), fetch(stepped, at=T1), request_id=REQUEST, observed_at=T1) == []


def test_a_new_out_of_service_violation_is_added_with_the_held_totals_before() -> None:
    [change] = detect_changes(
        fetch(window()), fetch([*window(), NEW_OOS], at=T1), request_id=REQUEST, observed_at=T1
    )
    assert (change.kind, change.subject, change.source, change.dot) == (
        ChangeKind.VIOLATIONS_ADDED,
        "violations",
        SourceKey.VIOLATIONS,
        DOT,
    )
    assert change.before == {
        "count": 4,
        "oos_count": 1,
        "inspections": 3,
        "per_basic": {"hos_compliance": 1, "unsafe_driving": 1, "vehicle_maintenance": 2},
        "latest_inspection_date": "2025-09-02",
    }
    assert change.after == {
        "count": 1,
        "oos_count": 1,
        "inspections": 1,
        "per_basic": {"unsafe_driving": 1},
        "latest_inspection_date": "2025-10-28",
    }
    assert (change.upstream_as_of, change.observed_at, change.request_id) == (AS_OF, T1, REQUEST)
    assert event_id(change) == f"change:{REQUEST}:violations_added:violations"


def test_rows_leaving_the_window_age_out_with_their_count_and_basics() -> None:
    [change] = detect_changes(fetch(window()), fetch(window()[:2], at=T1), request_id=REQUEST, observed_at=T1)
    assert (change.kind, change.subject) == (ChangeKind.VIOLATIONS_AGED_OUT, "violations")
    assert change.before == violation_totals(fetch(window()).records)
    assert change.after == {
        "count": 2,
        "oos_count": 0,
        "inspections": 2,
        "per_basic": {"hos_compliance": 1, "unsafe_driving": 1},
        "latest_inspection_date": "2025-03-14",
    }


def test_a_monthly_run_adds_and_ages_out_in_one_read() -> None:
    found = detect_changes(
        fetch(window()), fetch([*window()[:3], NEW_OOS], at=T1), request_id=REQUEST, observed_at=T1
    )
    assert [(c.kind, c.subject) for c in found] == [
        (ChangeKind.VIOLATIONS_ADDED, "violations"),
        (ChangeKind.VIOLATIONS_AGED_OUT, "violations"),
    ]
    assert [c.after["count"] for c in found if isinstance(c.after, dict)] == [1, 1]


def test_a_corrected_row_of_a_held_key_is_neither_added_nor_aged_out() -> None:
    corrected = window()
    corrected[1] = row(oos_indicator="true", oos_weight="2")
    assert detect_changes(fetch(window()), fetch(corrected, at=T1), request_id=REQUEST, observed_at=T1) == []


def test_a_clean_carrier_that_gets_its_first_violation_adds_it() -> None:
    [change] = detect_changes(fetch([]), fetch([NEW_OOS], at=T1), request_id=REQUEST, observed_at=T1)
    assert change.kind is ChangeKind.VIOLATIONS_ADDED
    assert change.before == {
        "count": 0,
        "oos_count": 0,
        "inspections": 0,
        "per_basic": {},
        "latest_inspection_date": None,
    }


def test_an_exact_duplicate_row_counts_once_per_ordinal() -> None:
    [change] = detect_changes(
        fetch(window()), fetch([*window(), row()], at=T1), request_id=REQUEST, observed_at=T1
    )
    assert change.kind is ChangeKind.VIOLATIONS_ADDED
    assert isinstance(change.after, dict)
    assert change.after["count"] == 1


def test_an_unknown_basic_label_counts_as_unknown() -> None:
    odd = row(unique_id="1", basic_desc="Something New")
    [change] = detect_changes(fetch([]), fetch([odd], at=T1), request_id=REQUEST, observed_at=T1)
    assert isinstance(change.after, dict)
    assert change.after["per_basic"] == {"unknown": 1}
