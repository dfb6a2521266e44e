"""Missing months in a monthly source's history, pure."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.gaps import MONTHLY, monthly_gaps


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
