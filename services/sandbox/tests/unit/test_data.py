from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import date

import pytest

from fmcsa_sandbox import data
from fmcsa_sandbox.data import (
    CSA_NOT_PUBLIC,
    UNKNOWN_DOTS,
    VIOLATIONS_2500_ROWS,
    Snapshot,
    snapshot,
)

SAMPLE = range(1_000_001, 1_000_301)


def known(dot: int, version: int = 1) -> Snapshot:
    found = snapshot(dot, version)
    assert found is not None
    return found


def clear_caches() -> None:
    for cached in (data.profile, data.month_events, data.counts, data.snapshot, data.head_rows):
        cached.cache_clear()


def test_seeds_come_from_blake2b_not_from_the_salted_hash() -> None:
    expected = int.from_bytes(hashlib.blake2b(b"2847193\x1fprofile", digest_size=8).digest(), "big")
    assert data.stable_seed(2847193, "profile") == expected


def test_the_same_dot_and_version_give_the_same_carrier_after_the_caches_are_dropped() -> None:
    before = [known(dot) for dot in (2847193, 1398457, VIOLATIONS_2500_ROWS)]
    clear_caches()
    after = [known(dot) for dot in (2847193, 1398457, VIOLATIONS_2500_ROWS)]
    assert before == after
    assert before[0] is not after[0]


def test_different_dots_give_different_carriers() -> None:
    names = {known(dot).profile.legal_name for dot in SAMPLE}
    assert len(names) > 50


def test_unknown_range_and_out_of_range_dots_have_no_snapshot() -> None:
    assert all(
        snapshot(dot, 1) is None for dot in (UNKNOWN_DOTS.start, UNKNOWN_DOTS.stop - 1, 0, 100_000_000)
    )
    assert snapshot(UNKNOWN_DOTS.stop, 1) is not None
    assert snapshot(UNKNOWN_DOTS.start - 1, 1) is not None


def test_dots_ending_in_7_are_passenger_carriers_with_public_percentiles() -> None:
    for dot in SAMPLE:
        found = known(dot)
        assert found.profile.passenger == (dot % 10 == 7)
        for basic in found.basics:
            assert (basic.percentile is not None) == found.profile.passenger
            assert (basic.alert is not None) == found.profile.passenger


def test_basic_counts_equal_the_violation_rows_of_that_basic() -> None:
    for dot in SAMPLE:
        found = known(dot)
        for basic in found.basics:
            mine = [r for r in found.rows if r.violation.kind.basic_id == basic.basic.basic_id]
            assert basic.violations == len(mine)
            assert basic.inspections_with_violation == len({r.unique_id for r in mine})
        if not found.basics:
            assert found.rows == ()


def test_inspection_counts_follow_the_rows_out_of_service_flags() -> None:
    for dot in SAMPLE:
        found = known(dot)
        oos_inspections = {r.unique_id for r in found.rows if r.violation.oos}
        c = found.counts
        assert c.vehicle_oos + c.driver_oos >= len(oos_inspections) > 0 or not oos_inspections
        assert c.vehicle_oos <= c.vehicle
        assert c.driver_oos <= c.driver
        assert c.hazmat_oos <= c.hazmat


def test_rows_come_in_id_order_with_ids_unique_and_weights_matching_their_age() -> None:
    found = known(VIOLATIONS_2500_ROWS)
    ids = [r.row_id for r in found.rows]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    run = data.run_date(1)
    for row in found.rows:
        age = (run.year * 12 + run.month) - (row.insp_date.year * 12 + row.insp_date.month)
        assert 1 <= age <= 24
        assert row.time_weight == data.time_weight(age)


def test_the_2500_row_carrier_has_exactly_2500_rows_at_every_version() -> None:
    for version in (1, 2, 3, 7, 25):
        assert len(known(VIOLATIONS_2500_ROWS, version).rows) == 2500


def test_the_not_public_carrier_carries_property_and_has_measures() -> None:
    found = known(CSA_NOT_PUBLIC)
    assert not found.profile.passenger
    assert len(found.basics) == 5
    assert all(b.percentile is None and b.alert is None for b in found.basics)


def test_the_data_has_the_public_datasets_oddities_somewhere() -> None:
    rows = [row for dot in SAMPLE for row in known(dot).rows]
    assert any(r.violation.soft_hyphen for r in rows)
    assert any(r.violation.group_missing for r in rows)
    duplicates = Counter((r.unique_id, r.violation.kind.code, r.violation.unit) for r in rows)
    assert max(duplicates.values()) >= 2
    blocks = {known(dot).profile.us_block for dot in SAMPLE}
    assert blocks == {"us_inspections", "united_states_inspections"}
    assert any(not known(dot).basics for dot in SAMPLE)  # carriers without inspections: `[]`


def weights_after(found: Snapshot) -> dict[tuple[str, str, str], int]:
    return {(r.unique_id, r.violation.kind.code, r.violation.unit): r.time_weight for r in found.rows}


def test_a_bump_ages_rows_out_adds_new_ones_and_steps_weights_down() -> None:
    gone = new = stepped = unchanged_carriers = moved_percentiles = moved_updates = 0
    for dot in SAMPLE:
        before, after = known(dot, 1), known(dot, 2)
        old_keys = {(r.unique_id, r.violation.kind.code, r.violation.unit, r.insp_date) for r in before.rows}
        new_keys = {(r.unique_id, r.violation.kind.code, r.violation.unit, r.insp_date) for r in after.rows}
        gone += len(old_keys - new_keys)
        new += len(new_keys - old_keys)
        weights_before = {
            (r.unique_id, r.violation.kind.code, r.violation.unit): r.time_weight for r in before.rows
        }
        stepped += sum(
            1
            for r in after.rows
            if weights_before.get((r.unique_id, r.violation.kind.code, r.violation.unit), r.time_weight)
            > r.time_weight
        )
        same_weights = all(weights_before.get(key) == weight for key, weight in weights_after(after).items())
        unchanged_carriers += old_keys == new_keys and same_weights and before.counts == after.counts
        moved_percentiles += any(
            a.percentile != b.percentile for a, b in zip(before.basics, after.basics, strict=False)
        )
        moved_updates += before.latest_update != after.latest_update
    assert gone > 0
    assert new > 0
    assert stepped > 0
    assert 0 < unchanged_carriers < len(SAMPLE)
    assert moved_percentiles > 0
    assert moved_updates > 0


def test_latest_update_moves_only_when_the_figures_move() -> None:
    for dot in SAMPLE:
        for version in (2, 3):
            before, after = known(dot, version - 1), known(dot, version)
            if before.counts == after.counts:
                assert before.latest_update == after.latest_update
            else:
                assert after.latest_update > before.latest_update


def test_row_ids_change_with_the_monthly_run_but_not_within_it() -> None:
    first, again, later = known(2847193, 1), known(2847193, 1), known(2847193, 2)
    assert [r.row_id for r in first.rows] == [r.row_id for r in again.rows]
    assert {r.row_id for r in first.rows}.isdisjoint({r.row_id for r in later.rows})


def test_run_dates_are_last_fridays_and_publication_follows() -> None:
    for version in range(1, 15):
        day = data.run_date(version)
        assert day.weekday() == 4
        assert (day.replace(day=28) if day.month == 2 else day).day >= 22
        assert data.published_at(version).date() > day


@pytest.mark.parametrize(
    ("day", "text"),
    [(date(2025, 9, 2), "02-SEP-25"), (date(2024, 6, 19), "19-JUN-24"), (date(2030, 12, 31), "31-DEC-30")],
)
def test_socrata_dates_are_day_upper_case_month_two_digit_year(day: date, text: str) -> None:
    assert data.socrata_date(day) == text


def test_value_formats_follow_the_recorded_bodies() -> None:
    assert data.mdy(date(2019, 8, 14)) == "08/14/2019"
    assert data.mdy(None) is None
    assert data.oos_rate(1, 6) == 16.666666666666664
    assert data.oos_rate(0, 9) == 0
    assert isinstance(data.oos_rate(0, 9), int)
    assert data.oos_rate(1, 10) == 10
    assert isinstance(data.oos_rate(1, 10), int)
    assert data.oos_rate(0, 0) == 0
    assert [data.percent(1, 6), data.percent(0, 9), data.percent(1, 2), data.percent(7, 50)] == [
        "16.67%",
        "0%",
        "50%",
        "14%",
    ]
    assert [data.format_measure(x) for x in (4.5, 0.518, 0.0, 1.94)] == ["4.5", "0.52", "0", "1.94"]


def test_canonical_dot_accepts_one_to_eight_ascii_digits_only() -> None:
    assert data.canonical_dot("0123") == 123
    assert data.canonical_dot("12345678") == 12345678
    for text in ("", "123456789", "12a", "١٢٣", "-1", " 1"):
        assert data.canonical_dot(text) is None


def test_generation_is_fast_enough_for_a_benchmark_of_thousands_of_carriers() -> None:
    dots = random.Random(7).sample(range(1, 9_000_000), 300)
    for dot in dots:
        assert snapshot(dot, 5) is not None or dot in UNKNOWN_DOTS
