"""Missing upstream periods in a company's history: pure, from the as-of dates its history holds.

The sources whose upstream publishes once a month (csa's SMS run, the violations dataset) give one history
point per month. A month between the first point and last month with no point is a gap: the system was
down, or every fetch failed that month. The current month is never a gap (its publication may not be out).
Each gap says whether the upstream still keeps that month (`upstream_keeps_it`), and why; nothing is ever
filled in with a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from fmcsa_events.identifiers import SourceKey

MONTHLY: dict[SourceKey, tuple[bool, str]] = {
    SourceKey.CSA: (
        False,
        "QCMobile serves only the current SMS run: a month that was not read cannot be read again",
    ),
    SourceKey.VIOLATIONS: (
        True,
        "the dataset keeps 24 months of violations by inspection date: that month's rows are in later reads",
    ),
}
"""The monthly sources, and whether their upstream keeps a past month (with the reason)."""


@dataclass(frozen=True, slots=True)
class Gap:
    source: SourceKey
    month: date
    """The first day of the missing month."""
    upstream_keeps_it: bool
    why: str


def _month(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def monthly_gaps(source: SourceKey, as_ofs: Iterable[datetime], *, today: date) -> list[Gap]:
    """The months with no history point of `source`, from its first point to the month before `today`'s;
    none for a source that is not monthly or has no point yet.
    """
    if source not in MONTHLY:
        return []
    held = {_month(moment) for moment in as_ofs}
    if not held:
        return []
    keeps, why = MONTHLY[source]
    gaps: list[Gap] = []
    month, current = min(held), _month(today)
    while month < current:
        if month not in held:
            gaps.append(Gap(source, month, keeps, why))
        month = _next(month)
    return gaps
