"""The pure plan of one read (`domain.plan`): baseline, idempotence, each write and change kind, counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from violations_support import DOT, row

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ChangeKind
from fmcsa_source_kit.plan import Observation
from fmcsa_source_violations.domain.changes import Held, HeldRow, ViolationsPlan, plan, violation_totals
from fmcsa_source_violations.domain.model import Violation, ViolationsFetch
from fmcsa_source_violations.domain.parse import assign_ordinals

T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=31)
AS_OF = datetime(2025, 10, 21, 9, 12, 44, tzinfo=UTC)
REQUEST = UUID("00000000-0000-4000-8000-000000000022")


def window() -> list[Violation]:
    return [
        row(viol_code="39347E", oos_indicator="true", oos_weight="2", viol_unit="1"),
        row(),
        row(),  # an exact duplicate: ordinal 1
        row(unique_id="897734501", insp_date="14-MAR-25", basic_desc="Hours-of-Service Compliance"),
        row(unique_id="871150296", insp_date="19-JUN-24", basic_desc="Unsafe Driving", viol_unit="D"),
    ]


NEW_OOS = row(
    unique_id="912000777",
    insp_date="28-OCT-25",
    viol_code="3965A",
    oos_indicator="true",
    oos_weight="2",
    basic_desc="Unsafe Driving",
    viol_unit="D",
)


def fetch(rows: list[Violation], *, at: datetime = T1) -> ViolationsFetch:
    return ViolationsFetch(dot=DOT, retrieved_at=at, upstream_as_of=AS_OF, records=assign_ordinals(rows))


def held(rows: list[Violation], *, aged_out: list[Violation] = ()) -> Held:  # type: ignore[assignment]
    """What the store holds after reading `rows` at T0 (and, aged out, `aged_out`)."""
    current = [HeldRow(v, changed_at=T0, aged_out=False) for v in assign_ordinals(rows)]
    gone = [HeldRow(v, changed_at=T0, aged_out=True) for v in aged_out]
    return Held(dot=DOT, last_fetched_at=T0, upstream_as_of=AS_OF, rows=tuple(current + gone))


def plan_of(before: Held | None, read: ViolationsFetch) -> ViolationsPlan:
    return plan(before, read, Observation(REQUEST, DOT, read.retrieved_at, read.upstream_as_of))


def counts(planned: ViolationsPlan) -> tuple[int, int, int, int]:
    c = planned.counts
    return (c.fetched, c.inserted, c.updated, c.unchanged)


def test_a_first_read_is_a_baseline_that_inserts_every_row_and_plans_no_change() -> None:
    read = fetch(window())
    planned = plan_of(None, read)
    assert planned.insert == read.records
    assert (planned.update, planned.age_out, planned.changes, planned.supersede, planned.refresh) == (
        (),
        (),
        (),
        (),
        (),
    )
    assert counts(planned) == (5, 5, 0, 0)
    assert not planned.is_empty


def test_a_clean_carrier_first_read_is_an_empty_plan() -> None:
    planned = plan_of(None, fetch([]))
    assert planned.is_empty
    assert counts(planned) == (0, 0, 0, 0)


def test_the_same_read_against_what_it_produced_plans_nothing_in_any_order() -> None:
    for rows in (window(), list(reversed(window()))):
        planned = plan_of(held(window()), fetch(rows))
        assert planned.is_empty
        assert counts(planned) == (5, 0, 0, 5)


def test_a_new_key_is_inserted_and_published_as_added_with_the_held_totals_before() -> None:
    planned = plan_of(held(window()), fetch([*window(), NEW_OOS]))
    assert planned.insert == (NEW_OOS,)
    assert counts(planned) == (6, 1, 0, 5)
    [change] = planned.changes
    assert (change.kind, change.subject, change.source, change.dot) == (
        ChangeKind.VIOLATIONS_ADDED,
        "violations",
        SourceKey.VIOLATIONS,
        DOT,
    )
    assert change.before == violation_totals(assign_ordinals(window()))
    assert change.after == {
        "count": 1,
        "oos_count": 1,
        "inspections": 1,
        "per_basic": {"unsafe_driving": 1},
        "latest_inspection_date": "2025-10-28",
    }
    assert (change.request_id, change.observed_at, change.upstream_as_of) == (REQUEST, T1, AS_OF)


def test_a_held_key_missing_from_the_read_ages_out_and_is_published_without_being_counted() -> None:
    before = window()
    planned = plan_of(held(before), fetch(before[:4]))
    assert [v.unique_id for v in planned.age_out] == ["871150296"]
    assert counts(planned) == (4, 0, 0, 4)
    [change] = planned.changes
    assert change.kind is ChangeKind.VIOLATIONS_AGED_OUT
    assert change.before == violation_totals(assign_ordinals(before))
    assert change.after == violation_totals(planned.age_out)


def test_a_disappearing_duplicate_ages_out_its_ordinal_1() -> None:
    without_duplicate = [v for n, v in enumerate(window()) if n != 2]
    planned = plan_of(held(window()), fetch(without_duplicate))
    assert [(v.viol_code, v.ordinal) for v in planned.age_out] == [("3939TS", 1)]
    assert counts(planned) == (4, 0, 0, 4)


def test_a_row_already_aged_out_is_not_aged_out_again() -> None:
    before = window()
    planned = plan_of(held(before[:4], aged_out=assign_ordinals(before)[4:]), fetch(before[:4]))
    assert planned.is_empty


def test_changed_content_is_an_update_that_supersedes_the_held_content_and_publishes_nothing() -> None:
    corrected = window()
    corrected[0] = row(viol_code="39347E", oos_indicator="false", oos_weight="0", viol_unit="1")
    before = held(window())
    planned = plan_of(before, fetch(corrected))
    assert [v.oos for v in planned.update] == [False]
    assert [h.violation.oos for h in planned.supersede] == [True]
    assert planned.supersede[0] in before.rows
    assert planned.changes == ()
    assert counts(planned) == (5, 0, 1, 4)


def test_a_key_back_after_aging_out_is_an_update_and_added_again() -> None:
    before = window()
    returning = assign_ordinals(before)[4]
    planned = plan_of(held(before[:4], aged_out=[returning]), fetch(before))
    assert planned.update == (returning,)
    assert planned.supersede == ()  # the same content: no version to keep
    assert counts(planned) == (5, 0, 1, 4)
    assert [c.kind for c in planned.changes] == [ChangeKind.VIOLATIONS_ADDED]


def test_a_key_back_with_other_content_also_supersedes_the_aged_out_content() -> None:
    before = window()
    gone = assign_ordinals(before)[4]
    back = replace(gone, severity_weight=1, content_hash="another")
    planned = plan_of(held(before[:4], aged_out=[gone]), fetch([*before[:4], back]))
    assert planned.update == (back,)
    assert [h.violation for h in planned.supersede] == [gone]


def test_a_time_weight_step_is_refreshed_silently_and_counts_as_unchanged() -> None:
    stepped = [replace(v, time_weight=1, total_severity_wght=6) for v in window()]
    planned = plan_of(held(window()), fetch(stepped))
    assert len(planned.refresh) == 5
    assert {v.time_weight for v in planned.refresh} == {1}
    assert (planned.insert, planned.update, planned.age_out, planned.changes) == ((), (), (), ())
    assert counts(planned) == (5, 0, 0, 5)
    assert not planned.is_empty  # the weights are written
    assert plan_of(held(stepped), fetch(stepped)).is_empty


def test_a_monthly_run_adds_updates_ages_out_and_counts_the_read() -> None:
    before = window()
    read = [*before[:3], row(unique_id="897734501", insp_date="14-MAR-25", basic_desc="Driver Fitness")]
    planned = plan_of(held(before), fetch([*read, NEW_OOS]))
    assert [v.unique_id for v in planned.insert] == ["912000777"]
    assert [v.unique_id for v in planned.update] == ["897734501"]
    assert [v.unique_id for v in planned.age_out] == ["871150296"]
    assert [c.kind for c in planned.changes] == [ChangeKind.VIOLATIONS_ADDED, ChangeKind.VIOLATIONS_AGED_OUT]
    fetched, inserted, updated, unchanged = counts(planned)
    assert (fetched, inserted, updated, unchanged) == (5, 1, 1, 3)
    assert fetched == inserted + updated + unchanged


def test_an_empty_read_ages_out_everything_held() -> None:
    planned = plan_of(held(window()), fetch([]))
    assert len(planned.age_out) == 5
    assert counts(planned) == (0, 0, 0, 0)
    [change] = planned.changes
    assert change.kind is ChangeKind.VIOLATIONS_AGED_OUT
