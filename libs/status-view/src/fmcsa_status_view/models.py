"""What the status view answers: frozen read models (never table classes), and pages of them. The
sync log and the change feed are read as their rows (`fmcsa_status_view.rows`): no other shape.

Times are aware UTC datetimes. A DOT number is its canonical text (`"2847193"`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, TypeVar

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.rows import Counts as Counts
from fmcsa_status_view.rows import LastError as LastError
from fmcsa_status_view.rows import RetryProgress as RetryProgress
from fmcsa_status_view.rows import SourceRow, TotalsRow
from fmcsa_status_view.rows import SyncState as SyncState

T = TypeVar("T")


@dataclass(slots=True)
class SourceStatus(SourceRow):
    """One source of one company: its row (`status_source`), whose properties group what a reader
    shows (`last_counts`, `last_error`...), and its newest request's retry progress. Three times
    matter (ARCHITECTURE.md): `upstream_as_of` (what the data describes), `last_success_at` (last good
    fetch) and `last_requested_at`/`state` (last attempt). `consecutive_failures` counts failed
    requests newer than the newest success.
    """

    retry: RetryProgress | None = None
    """Set while the newest request waits for its next attempt (state `requested`)."""


@dataclass(frozen=True, slots=True)
class CompanyStatus:
    """One company: lifecycle, overall flags and each source it was ever requested for.

    `active`: registered and not removed since. `success`: it has run and no source is failing.
    `never_synced`: no source ever succeeded. `last_run` / `last_success_at`: the newest finished
    outcome / success of any source. `sources` lacks the sources never requested.
    """

    dot: str
    name: str | None
    active: bool
    registered_at: datetime | None
    removed_at: datetime | None
    last_run: datetime | None
    last_success_at: datetime | None
    success: bool
    failing: bool
    never_synced: bool
    failing_sources: tuple[SourceKey, ...]
    sources: dict[SourceKey, SourceStatus] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """The values of one series on one upstream as-of date (the newest observation of that date).

    A value is None when the upstream withheld it (a "Not Public" percentile), never 0.
    """

    as_of: datetime
    values: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class HistorySeries:
    """One subject's points (a BASIC for csa), oldest first."""

    subject: str
    points: list[HistoryPoint]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list; pass `next_cursor` back for the next page (None: last)."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SyncCounts:
    """One company's requests in the sync log (`StatusView.sync_counts`)."""

    total: int
    succeeded: int
    failed: int
    last_finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class DayOutcomes:
    day: date
    source: SourceKey
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over everything: `companies`, `failing`, `never_synced` count active companies;
    `requests`, `succeeded`, `failed` count sync-log events; `last_sync_at` is the newest outcome.
    `per_source` holds each source's totals row (its `companies`, `failing`, `never_synced` count
    its (company, source) rows).
    """

    companies: int
    failing: int
    never_synced: int
    requests: int
    succeeded: int
    failed: int
    last_sync_at: datetime | None
    last_success_at: datetime | None
    per_source: dict[SourceKey, TotalsRow]
    outcomes_per_day: tuple[DayOutcomes, ...]
    position: int
    events: int
    rejected: int
