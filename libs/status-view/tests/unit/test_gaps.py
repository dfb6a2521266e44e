"""Missing months in a monthly source's history, pure."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.gaps import AGED_OUT, MONTHLY, GapState, gap_state, monthly_gaps


def at(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, 9, 12, tzinfo=UTC)


def test_a_month_between_two_points_and_the_months_up_to_the_last_one_are_gaps() -> None:
    points = [at(2026, 1), at(2026, 2, 21), at(2026, 4, 3)]
    gaps = monthly_gaps(SourceKey.CSA, points, today=date(2026, 7, 15))
    assert [g.month for g in gaps] == [date(2026, 3, 1), date(2026, 5, 1), date(2026, 6, 1)]
    assert all(not g.upstream_keeps_it for g in gaps)  # QCMobile: the current run only
    assert gaps[0].why == MONTHLY[SourceKey.CSA][1]


def test_the_current_month_is_never_a_gap_and_a_year_boundary_counts_every_month() -> None:
    assert monthly_gaps(SourceKey.VIOLATIONS, [at(2025, 11, 21)], today=date(2025, 11, 30)) == []
    gaps = monthly_gaps(SourceKey.VIOLATIONS, [at(2025, 11, 21)], today=date(2026, 2, 2))
    assert [g.month for g in gaps] == [date(2025, 12, 1), date(2026, 1, 1)]
    assert all(g.upstream_keeps_it for g in gaps)


def test_no_points_or_a_source_that_is_not_monthly_has_no_gaps() -> None:
    assert monthly_gaps(SourceKey.CSA, [], today=date(2026, 7, 1)) == []
    assert monthly_gaps(SourceKey.INSPECTIONS, [at(2025, 1)], today=date(2026, 7, 1)) == []
    assert (
        monthly_gaps(SourceKey.CSA, [at(2026, 1), at(2026, 1, 20), at(2026, 2)], today=date(2026, 3, 5)) == []
    )


def test_a_violations_gap_is_backfilled_by_a_later_read_within_24_months_and_never_gets_a_point() -> None:
    points = [at(2026, 1), at(2026, 3, 21)]  # February missed; March's read brought its rows
    gaps = monthly_gaps(SourceKey.VIOLATIONS, points, today=date(2026, 6, 10))
    assert [(g.month, g.state, g.backfilled_by) for g in gaps] == [
        (date(2026, 2, 1), GapState.BACKFILLED, date(2026, 3, 1)),
        (date(2026, 4, 1), GapState.PENDING, None),  # no read since: the next one brings it
        (date(2026, 5, 1), GapState.PENDING, None),
    ]
    assert all(g.upstream_keeps_it for g in gaps)


def test_a_violations_month_no_read_reached_within_24_months_is_unrecoverable() -> None:
    points = [at(2023, 1), at(2025, 2)]  # down for two years
    gaps = monthly_gaps(SourceKey.VIOLATIONS, points, today=date(2025, 3, 1))
    states = {g.month: g for g in gaps}
    assert states[date(2023, 2, 1)].state is GapState.UNRECOVERABLE  # 24 months before February 2025
    assert states[date(2023, 2, 1)].why == AGED_OUT
    assert not states[date(2023, 2, 1)].upstream_keeps_it
    assert states[date(2023, 3, 1)].state is GapState.BACKFILLED  # 23 months before: in that read
    assert states[date(2023, 3, 1)].backfilled_by == date(2025, 2, 1)
    assert not states[date(2023, 3, 1)].upstream_keeps_it  # 24 months before today's: not served now
    old = monthly_gaps(SourceKey.VIOLATIONS, [at(2022, 1)], today=date(2024, 3, 1))
    assert old[0].state is GapState.UNRECOVERABLE  # never read again, and out of the window now
    assert old[-1].state is GapState.PENDING


def test_a_csa_gap_is_unrecoverable_even_with_later_reads() -> None:
    gaps = monthly_gaps(SourceKey.CSA, [at(2026, 1), at(2026, 3)], today=date(2026, 4, 2))
    assert [(g.month, g.state, g.backfilled_by) for g in gaps] == [
        (date(2026, 2, 1), GapState.UNRECOVERABLE, None)
    ]
    assert gap_state(SourceKey.INSPECTIONS, date(2026, 2, 1), [], today=date(2026, 4, 2))[0] is (
        GapState.UNRECOVERABLE
    )
