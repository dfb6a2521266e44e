"""The rows of the status projection: one class per table, and the only place its fields are spelled.

The projector's fold (`fmcsa_status.domain`) works on these values and the store writes them;
`StatusView` reads the same classes back, and the gateway builds its API answers from them with
`model_validate(row, from_attributes=True)`. The tables (`fmcsa_status_view.tables`) are derived
from the classes: a field is a column (its type from the annotation, with the storage details
there), so adding a column means adding a field here and, to show it, to the API schema.

They are plain slotted dataclasses, not models: the fold copies a row the first time a batch touches
it (`copy()`), changes its copy in place and hands it back (nothing changes it after that), and a
reader never changes what it was given. Every datetime is aware and in UTC; a DOT number is its
canonical text. Derived values a reader shows (`SyncLogRow.counts`, `.retry`) are properties.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any

from fmcsa_events.identifiers import SourceKey

RequestKey = tuple[datetime, str]
"""The order of requests: `(requested_at, request_id as text)`; a larger key is the newer request."""

LifecycleKey = tuple[datetime, str]
"""The order of company lifecycle facts: `(occurred_at, event_id)`."""

JsonObject = dict[str, Any]


class SyncState(StrEnum):
    """Where a request stands; for a source, where its newest request stands."""

    REQUESTED = "requested"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Counts:
    """What one successful fetch did to the source's store."""

    fetched: int
    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class LastError:
    """The newest failed request of a source (kept after a later success, as history)."""

    request_id: str
    kind: str
    message: str
    retryable: bool
    at: datetime
    attempts: int | None


@dataclass(frozen=True, slots=True)
class RetryProgress:
    """A request that waits for its next attempt: attempt `attempt` of at most `max_attempts` failed
    with `kind`, and the next one is due at `next_attempt_at` (a folded `SyncAttemptFailed`).
    """

    attempt: int
    max_attempts: int
    kind: str
    message: str
    next_attempt_at: datetime


@dataclass(slots=True)
class SyncLogRow:
    """One sync-log row (`status_sync_log`): one request, merged from its `SyncRequested` and its
    terminal outcome, whichever came first. `status` is `requested` until the outcome is folded;
    `requested_at` is None while the outcome is known but its request is not (yet).

    `pending_summary` holds a success's data summary only while the success waits for its request
    (it is applied to the source's status once both are known). The `retry_*` fields are the newest
    `SyncAttemptFailed` while the request waits for its next attempt (kept after the outcome; `retry`
    shows them only while the request waits).
    """

    request_id: str
    dot: str
    source: SourceKey
    status: SyncState = SyncState.REQUESTED
    trigger: str | None = None
    requested_by: str | None = None
    requested_at: datetime | None = None
    deadline: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    attempts: int | None = None
    fetched: int | None = None
    inserted: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    upstream_as_of: datetime | None = None
    retrieved_at: datetime | None = None
    checked_unchanged: bool | None = None
    """A success that only checked the upstream's publication (`SourceSynced.checked_unchanged`)."""
    error_kind: str | None = None
    error_message: str | None = None
    error_detail: str | None = None
    error_retryable: bool | None = None
    pending_summary: JsonObject | None = None
    retry_attempt: int | None = None
    retry_max_attempts: int | None = None
    retry_kind: str | None = None
    retry_message: str | None = None
    retry_at: datetime | None = None

    @property
    def has_request(self) -> bool:
        return self.requested_at is not None

    @property
    def has_outcome(self) -> bool:
        return self.finished_at is not None

    @property
    def complete(self) -> bool:
        return self.requested_at is not None and self.finished_at is not None

    @property
    def key(self) -> RequestKey | None:
        return None if self.requested_at is None else (self.requested_at, self.request_id)

    @property
    def sort_at(self) -> datetime:
        """When the log shows it (the stored `sort_at` column, the log's order): requested time, or
        finish (else first attempt) time while the request is unknown.
        """
        moment = self.requested_at or self.finished_at or self.started_at
        assert moment is not None, "a row holds a request, an outcome or a retry"
        return moment

    @property
    def counts(self) -> Counts | None:
        """What the fetch did, for a success."""
        if self.status != SyncState.SUCCEEDED:
            return None
        return Counts(self.fetched or 0, self.inserted or 0, self.updated or 0, self.unchanged or 0)

    @property
    def retry(self) -> RetryProgress | None:
        """The newest attempt's progress while the request waits for its next attempt (`requested`)."""
        if self.status != SyncState.REQUESTED:
            return None
        return retry_progress(*_RETRY_FIELDS(self))

    def copy(self) -> SyncLogRow:
        return SyncLogRow(*_SYNC_LOG_FIELDS(self))


@dataclass(slots=True)
class SourceRow:
    """The status of one (company, source) (`status_source`): its newest request, newest success and
    newest failure. `consecutive_failures` counts failed requests newer than the newest success
    (request order). `state`, `last_finished_at` and `failing` are derived by the fold and stored for
    queries. `last_counts`, `last_error`... group what a reader shows.
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
    checked_unchanged: bool | None = None
    """The newest success only checked that the upstream published nothing newer than the data held."""
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

    @property
    def last_success_request_id(self) -> str | None:
        return self.success_request_id

    @property
    def last_duration_ms(self) -> int | None:
        return self.success_duration_ms

    @property
    def last_counts(self) -> Counts | None:
        """What the newest success's fetch did."""
        if self.success_request_id is None:
            return None
        return Counts(self.fetched or 0, self.inserted or 0, self.updated or 0, self.unchanged or 0)

    @property
    def last_error(self) -> LastError | None:
        """The newest failed request (kept after a later success, as history)."""
        if self.error_request_id is None or self.last_error_at is None:
            return None
        return LastError(
            request_id=self.error_request_id,
            kind=self.error_kind or "",
            message=self.error_message or "",
            retryable=bool(self.error_retryable),
            at=self.last_error_at,
            attempts=self.error_attempts,
        )

    def copy(self) -> SourceRow:
        return SourceRow(*_SOURCE_FIELDS(self))


@dataclass(slots=True)
class CompanyRow:
    """One company (`status_company`, by DOT): its lifecycle (last-writer-wins by occurred-at) and
    flags derived from its sources. `active` = registered and not removed since; `success` = it has
    run and no source is failing; `never_synced` = no source ever succeeded; `failing_sources` the
    failing ones' keys, comma-separated.

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

    def copy(self) -> CompanyRow:
        return CompanyRow(*_COMPANY_FIELDS(self))


@dataclass(slots=True)
class ChangeRow:
    """One row of the change feed (`status_change`): a `CarrierDataChanged`, kept once per `event_id`.

    `event_id` is the fact's deterministic id (`change:<request_id>:<kind>:<subject>`), computed from
    its content, so a republish under any message id is the same change. `position` is the stream
    sequence it was folded at (the lowest, if it was published more than once): the feed's order,
    newest first. `before` and `after` are the small JSON values the source service stated.
    """

    position: int
    event_id: str
    request_id: str
    dot: str
    source: SourceKey
    kind: str
    subject: str
    before: Any
    after: Any
    upstream_as_of: datetime | None
    observed_at: datetime


@dataclass(slots=True)
class TotalsRow:
    """Counters of one scope (`status_totals`: `all` or a source key). Applied as increments; dates as
    maxima; requests and outcomes count sync-log events.

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

    def add(self, other: TotalsRow) -> None:
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
        return self == TotalsRow(self.scope)


HistoryKey = tuple[str, SourceKey, str, datetime]
"""`(dot, source, subject, as_of)`: one point of one series."""


@dataclass(slots=True)
class HistoryRow:
    """One point of a history series (`status_history`): the values a source's summary gave for
    `subject` on the upstream as-of date `as_of`. Of several observations of one as-of date, the
    newest wins (by `order`: `(observed_at, request_id)`), so a repeated as-of overwrites and never
    duplicates. A value is None when the upstream withheld it, never 0.
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


@dataclass(slots=True)
class CarrierRow:
    """One carrier's record (`status_carrier`, by DOT): what the sources' newest successful fetches say
    about it, derived by the fold from each source's newest `SourceSynced.summary`
    (`fmcsa_status_view.record.carrier_record`), and its risk light (`fmcsa_status_view.risk`).

    Each group (`identity`, `operation`, `safety_rating`, `oos_rates`, `crashes`, `basics`,
    `violations`, `authority`, `insurance`) is a JSON object of normalized facts from one source, with
    that source's `source`, `upstream_as_of` and `retrieved_at` (ISO text or null); None when no
    source that gives it has succeeded. `sources` maps each succeeded source to its newest success
    (`request_id`, `upstream_as_of`, `retrieved_at`). `legal_name`, `name_key` (the legal name
    case-folded, for prefix search), `docket_keys` (`,MC123,FF45,`: dockets upper-cased without
    separators) and `risk` are columns for the list's filters.
    """

    dot: str
    legal_name: str | None = None
    name_key: str | None = None
    dba_name: str | None = None
    docket_keys: str = ""
    risk: str = "unknown"
    risk_reasons: list[JsonObject] | None = None
    identity: JsonObject | None = None
    operation: JsonObject | None = None
    safety_rating: JsonObject | None = None
    oos_rates: JsonObject | None = None
    crashes: JsonObject | None = None
    basics: JsonObject | None = None
    violations: JsonObject | None = None
    authority: JsonObject | None = None
    insurance: JsonObject | None = None
    sources: JsonObject | None = None


@dataclass(slots=True)
class ViolationRow:
    """One violation row of a carrier (`status_violation`), from the violations source's newest
    summary (`rows`); `seq` is its place in that list, newest inspection first (the list's order and
    its page key). (`inspection`, `code`, `unit`, `ordinal`) is the upstream row's key within the
    carrier; `inspected_on` is an ISO date; `basic` a BASIC key or None (a label the source did not
    know).
    """

    dot: str
    seq: int
    inspection: str
    code: str
    unit: str
    ordinal: int
    inspected_on: str
    basic: str | None
    oos: bool
    severity: int | None
    group_name: str | None
    description: str | None


@dataclass(slots=True)
class ViolationPageRow:
    """A page of violation rows (`ViolationsListed`) whose request has no outcome folded yet
    (`status_violation_page`, by request id and offset): held until that outcome, which takes its
    rows into `status_violation` when it is the carrier's newest violations success, and drops it
    otherwise. `rows` are the event's rows as it carries them; `first_seq` the first one's `seq` (the
    event's `offset`).
    """

    request_id: str
    first_seq: int
    dot: str
    rows: list[JsonObject]


RETRY_FIELDS = ("retry_attempt", "retry_max_attempts", "retry_kind", "retry_message", "retry_at")
"""The fields of `SyncLogRow` that hold a request's retry progress, in `retry_progress` order."""

_RETRY_FIELDS = attrgetter(*RETRY_FIELDS)


def retry_progress(
    attempt: int | None, max_attempts: int | None, kind: str | None, message: str | None, at: datetime | None
) -> RetryProgress | None:
    """A request's retry progress from its sync-log row's `RETRY_FIELDS`; None before any retry."""
    if attempt is None or at is None:
        return None
    return RetryProgress(attempt, max_attempts or 0, kind or "", message or "", at)


def latest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two times; None where neither is known."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def _getter(cls: type[Any]) -> Any:
    return attrgetter(*(f.name for f in fields(cls)))


_SYNC_LOG_FIELDS = _getter(SyncLogRow)
_SOURCE_FIELDS = _getter(SourceRow)
_COMPANY_FIELDS = _getter(CompanyRow)
