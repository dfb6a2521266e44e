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

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.models import SyncState as SyncState
from fmcsa_status_view.rows import ChangeRow, SyncLogRow
from fmcsa_status_view.rows import JsonObject as JsonObject
from fmcsa_status_view.rows import RequestKey as RequestKey

Entry = SyncLogRow
"""One sync-log row: the row class `StatusView` reads too (`fmcsa_status_view.rows`)."""

Change = ChangeRow
"""One row of the change feed: the row class `StatusView` reads too."""

LifecycleKey = tuple[datetime, str]
"""The order of company lifecycle facts: `(occurred_at, event_id)`."""

ALL = "all"
"""The totals scope that covers every source."""


@dataclass(slots=True)
class Pair:
    """Status of one (company, source): its newest request, newest success and newest failure.

    `consecutive_failures` counts failed requests newer than the newest success (request order).
    `state`, `last_finished_at` and `failing` are derived (see `derived`) and stored for queries.
    """

    dot: str
    source: SourceKey
    state: SyncState = SyncState.REQUESTED
    last_request_id: str | None = None
    last_requested_at: datetime | None = None
    last_trigger: str | None = None
    last_requested_by: str | None = None
    last_finished_at: datetime | None = None
    success_request_id: str | None = None
    success_requested_at: datetime | None = None
    last_success_at: datetime | None = None
    success_attempts: int | None = None
    success_duration_ms: int | None = None
    fetched: int | None = None
    inserted: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    last_summary: JsonObject | None = None
    upstream_as_of: datetime | None = None
    retrieved_at: datetime | None = None
    error_request_id: str | None = None
    error_requested_at: datetime | None = None
    last_error_at: datetime | None = None
    error_kind: str | None = None
    error_message: str | None = None
    error_retryable: bool | None = None
    error_attempts: int | None = None
    consecutive_failures: int = 0
    failing: bool = False
    requests: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def request_key(self) -> RequestKey | None:
        if self.last_request_id is None or self.last_requested_at is None:
            return None
        return (self.last_requested_at, self.last_request_id)

    @property
    def success_key(self) -> RequestKey | None:
        if self.success_request_id is None or self.success_requested_at is None:
            return None
        return (self.success_requested_at, self.success_request_id)

    @property
    def error_key(self) -> RequestKey | None:
        if self.error_request_id is None or self.error_requested_at is None:
            return None
        return (self.error_requested_at, self.error_request_id)

    @property
    def synced(self) -> bool:
        return self.success_request_id is not None

    def derive(self) -> None:
        """Recompute `state`, `last_finished_at` and `failing` from the rest (in place)."""
        success, error = self.success_key, self.error_key
        newest_done: RequestKey | None
        if success is None or (error is not None and error > success):
            newest_done, finished, done_state = error, self.last_error_at, SyncState.FAILED
        else:
            newest_done, finished, done_state = success, self.last_success_at, SyncState.SUCCEEDED
        answered = newest_done is not None and newest_done == self.request_key
        self.state = done_state if answered else SyncState.REQUESTED
        self.last_finished_at = finished if newest_done is not None else None
        self.failing = self.consecutive_failures > 0

    def copy(self) -> Pair:
        return Pair(*_PAIR_FIELDS(self))


@dataclass(slots=True)
class Company:
    """One company (by DOT): its lifecycle (last-writer-wins by occurred-at) and flags derived from
    its sources. `active` = registered and not removed since; `success` = it has run and no source is
    failing; `never_synced` = no source ever succeeded.

    Only what changes rarely is kept here, so most outcomes leave the row alone; the company's last
    run and last success are the newest of its sources' (`status_source`), derived when read.
    """

    dot: str
    name: str | None = None
    registered_at: datetime | None = None
    registered_event_id: str | None = None
    removed_at: datetime | None = None
    removed_event_id: str | None = None
    active: bool = False
    success: bool = False
    failing: bool = False
    never_synced: bool = True
    failing_sources: str = ""

    @property
    def registered_key(self) -> LifecycleKey | None:
        if self.registered_at is None or self.registered_event_id is None:
            return None
        return (self.registered_at, self.registered_event_id)

    @property
    def removed_key(self) -> LifecycleKey | None:
        if self.removed_at is None or self.removed_event_id is None:
            return None
        return (self.removed_at, self.removed_event_id)

    def copy(self) -> Company:
        return Company(*_COMPANY_FIELDS(self))


@dataclass(slots=True)
class Totals:
    """Counters of one scope (`all` or a source). Applied as increments; dates as maxima.

    For a source, `companies`, `failing` and `never_synced` count its (company, source) pairs; for
    `all` they count active companies.
    """

    scope: str
    companies: int = 0
    failing: int = 0
    never_synced: int = 0
    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    last_finished_at: datetime | None = None
    last_success_at: datetime | None = None

    def add(self, other: Totals) -> None:
        """Add `other`'s increments to this one (in place)."""
        self.companies += other.companies
        self.failing += other.failing
        self.never_synced += other.never_synced
        self.requests += other.requests
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.last_finished_at = latest(self.last_finished_at, other.last_finished_at)
        self.last_success_at = latest(self.last_success_at, other.last_success_at)

    @property
    def is_zero(self) -> bool:
        return self == Totals(self.scope)


DayKey = tuple[str, str]
"""`(day as YYYY-MM-DD in UTC, source)`."""


@dataclass(slots=True)
class DayCount:
    succeeded: int = 0
    failed: int = 0

    def add(self, other: DayCount) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed


HistoryKey = tuple[str, SourceKey, str, datetime]
"""`(dot, source, subject, as_of)`: one point of one series."""


@dataclass(slots=True)
class Point:
    """One point of a history series: the values a source's summary gave for `subject` on the
    upstream as-of date `as_of`. Of several observations of one as-of date, the newest wins (by
    `order`: `(observed_at, request_id)`), so a repeated as-of overwrites and never duplicates.
    """

    dot: str
    source: SourceKey
    subject: str
    as_of: datetime
    figures: dict[str, float | None]
    request_id: str
    observed_at: datetime

    @property
    def key(self) -> HistoryKey:
        return (self.dot, self.source, self.subject, self.as_of)

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.observed_at, self.request_id)


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def _getter(cls: type[Any]) -> Any:
    return attrgetter(*(f.name for f in fields(cls)))


_PAIR_FIELDS = _getter(Pair)
_COMPANY_FIELDS = _getter(Company)
