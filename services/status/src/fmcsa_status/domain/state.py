"""The values the status fold works on, one per row of the projection's tables (the sync log's and
the change feed's are the shared rows of `fmcsa_status_view.rows`).

They are records, not shared objects: the fold never changes a value it was given. It copies a row
the first time a batch touches it (`copy()`), changes its copy in place (a batch changes the same
row hundreds of times, and rebuilding a frozen 30-field value each time costs more than the rest of
the fold), and hands the copies back; nothing changes them after that.

Every datetime here is aware and in UTC (the fold normalises what events carry), so the same state
reads back equal from SQLite and PostgreSQL. Requests are ordered by `(requested_at, request_id)`:
that order, never arrival order, decides which of two requests is the newer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from fmcsa_status_view.models import SyncState as SyncState
from fmcsa_status_view.rows import ChangeRow, CompanyRow, HistoryRow, SourceRow, SyncLogRow, TotalsRow
from fmcsa_status_view.rows import HistoryKey as HistoryKey
from fmcsa_status_view.rows import JsonObject as JsonObject
from fmcsa_status_view.rows import LifecycleKey as LifecycleKey
from fmcsa_status_view.rows import RequestKey as RequestKey
from fmcsa_status_view.rows import latest as latest

Entry = SyncLogRow
"""One sync-log row: the row class `StatusView` reads too (`fmcsa_status_view.rows`)."""

Change = ChangeRow
"""One row of the change feed: the row class `StatusView` reads too."""

Pair = SourceRow
"""The status of one (company, source): the row class `StatusView` reads too."""

Company = CompanyRow
"""One company: the row class `StatusView` reads too."""

Totals = TotalsRow
"""The counters of one scope: the row class `StatusView` reads too."""

Point = HistoryRow
"""One point of a history series: the row of `status_history`."""

ALL = "all"
"""The totals scope that covers every source."""


DayKey = tuple[str, str]
"""`(day as YYYY-MM-DD in UTC, source)`."""


@dataclass(slots=True)
class DayCount:
    succeeded: int = 0
    failed: int = 0

    def add(self, other: DayCount) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed


def derive(pair: Pair) -> None:
    """Recompute a pair's `state`, `last_finished_at` and `failing` from the rest (in place)."""
    success, error = pair.success_key, pair.error_key
    newest_done: RequestKey | None
    if success is None or (error is not None and error > success):
        newest_done, finished, done_state = error, pair.last_error_at, SyncState.FAILED
    else:
        newest_done, finished, done_state = success, pair.last_success_at, SyncState.SUCCEEDED
    answered = newest_done is not None and newest_done == pair.request_key
    pair.state = done_state if answered else SyncState.REQUESTED
    pair.last_finished_at = finished if newest_done is not None else None
    pair.failing = pair.consecutive_failures > 0


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _getter(cls: type[Any]) -> Any:
    return attrgetter(*(f.name for f in fields(cls)))
