"""Missing upstream periods in a company's history, and whether each was backfilled: pure, from the as-of
dates its history holds.

The sources whose upstream publishes once a month (csa's SMS run, the violations dataset) give one history
point per month. A month between the first point and last month with no point is a gap: the system was
down, or every fetch failed that month. The current month is never a gap (its publication may not be out).
Nothing is ever filled in with a guess: a gap never gets a history point. Each gap has a `state`:

- `unrecoverable`: the upstream no longer serves that month. csa always (QCMobile serves the current SMS
  run only); violations once the month left the dataset's 24-month window (by inspection date) before any
  later read of the carrier.
- `backfilled` (violations): a later read of the carrier, within 24 months of the month, brought that
  month's rows (`backfilled_by`: the as-of month of the first such read). A full read returns every row of
  the window; a delta read too returns them, since it asks for every row updated after the carrier's mark,
  which the last read before the gap set. The rows are in the store and on the carrier record; the month
  still has no history point (its figures as of that month are not reconstructed).
- `pending` (violations): no later read yet, and the upstream still serves the month: the next read of the
  carrier brings it.

`upstream_keeps_it` says whether the upstream still serves the month today.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

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

KEPT_MONTHS: dict[SourceKey, int] = {SourceKey.VIOLATIONS: 24}
"""How many months back a source's upstream serves (a month more than this before a read is not in it)."""
AGED_OUT = (
    "the dataset keeps 24 months of violations by inspection date, and no read of this carrier came "
    "within them: that month's rows left it unread"
)


class GapState(StrEnum):
    BACKFILLED = "backfilled"
    PENDING = "pending"
    UNRECOVERABLE = "unrecoverable"


@dataclass(frozen=True, slots=True)
class Gap:
    source: SourceKey
    month: date
    """The first day of the missing month."""
    upstream_keeps_it: bool
    why: str
    state: GapState = GapState.UNRECOVERABLE
    backfilled_by: date | None = None
    """The as-of month of the later read that brought the month's rows (`backfilled` only)."""


def _month(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def gap_state(
    source: SourceKey, month: date, later_reads: Iterable[date], *, today: date
) -> tuple[GapState, date | None, bool]:
    """A missing `month`'s state, the month of the read that backfilled it (or None), and whether the
    upstream still serves it today; `later_reads` are the as-of months of the points after it.
    """
    kept = KEPT_MONTHS.get(source)
    if kept is None:
        return GapState.UNRECOVERABLE, None, False
    keeps_now = _months_between(month, _month(today)) < kept
    first_later = min((read for read in later_reads if read > month), default=None)
    if first_later is None:
        return (GapState.PENDING if keeps_now else GapState.UNRECOVERABLE), None, keeps_now
    if _months_between(month, first_later) < kept:
        return GapState.BACKFILLED, first_later, keeps_now
    return GapState.UNRECOVERABLE, None, keeps_now


def monthly_gaps(source: SourceKey, as_ofs: Iterable[datetime], *, today: date) -> list[Gap]:
    """The months with no history point of `source`, from its first point to the month before `today`'s,
    each with its state; none for a source that is not monthly or has no point yet.
    """
    if source not in MONTHLY:
        return []
    held = {_month(moment) for moment in as_ofs}
    if not held:
        return []
    why = MONTHLY[source][1]
    gaps: list[Gap] = []
    month, current = min(held), _month(today)
    while month < current:
        if month not in held:
            state, by, keeps = gap_state(source, month, held, today=today)
            said = AGED_OUT if state is GapState.UNRECOVERABLE and source in KEPT_MONTHS else why
            gaps.append(Gap(source, month, keeps, said, state, by))
        month = _next(month)
    return gaps
