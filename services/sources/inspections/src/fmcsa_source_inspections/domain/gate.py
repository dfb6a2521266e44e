"""The inspections change gate's pure parts: which DataHub rows it asks for at a check.

The SAFER snapshot SaferWebAPI serves counts inspections and crashes over the last 24 months. A carrier's
figures move when (a) an inspection or crash row of its DOT is new or changed (`updated_where`: rows whose
Socrata `:updated_at` is after the previous check) or (b) one leaves the 24-month window (`aged_out`:
rows dated in the days the window's start passed since the previous check). Nothing here covers the
snapshot's other parts (safety rating, census fields): the full refresh does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from fmcsa_source_kit.gate_rule import soql_instant

WINDOW_MONTHS = 24


def window_start(at: datetime) -> date:
    """The first day the 24-month window holds at `at` (UTC day): an inspection dated earlier has left
    it. SAFER's exact boundary (the anniversary in or out) is unverified; an inspection counts as gone
    the day after its anniversary, which is right either way.
    """
    day = at.astimezone(UTC).date()
    year, month = divmod(day.year * 12 + day.month - 1 - WINDOW_MONTHS, 12)
    month += 1
    for dom in range(day.day, 0, -1):  # 29 February and the like: the month's last day
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def aged_out(previous_check: datetime, now: datetime) -> tuple[date, date] | None:
    """The days [first, end) whose inspections and crashes left the window since `previous_check`, or
    None when the window's start has not moved.
    """
    first, end = window_start(previous_check), window_start(now)
    return (first, end) if end > first else None


def updated_where(since: datetime) -> str:
    """The rows new or changed after `since` (Socrata's `:updated_at` system field)."""
    return f":updated_at > '{soql_instant(since)}'"


def aged_where(column: str, days: tuple[date, date]) -> str:
    """The rows dated (`column`, text `YYYYMMDD`) in [first, end)."""
    first, end = days
    return f"{column} >= '{first:%Y%m%d}' AND {column} < '{end:%Y%m%d}'"
