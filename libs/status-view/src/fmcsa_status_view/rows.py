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
from operator import attrgetter
from typing import Any

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.models import Counts, RetryProgress, SyncState

RequestKey = tuple[datetime, str]
"""The order of requests: `(requested_at, request_id as text)`; a larger key is the newer request."""

JsonObject = dict[str, Any]


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
        if self.status != SyncState.REQUESTED or self.retry_attempt is None or self.retry_at is None:
            return None
        return RetryProgress(
            attempt=self.retry_attempt,
            max_attempts=self.retry_max_attempts or 0,
            kind=self.retry_kind or "",
            message=self.retry_message or "",
            next_attempt_at=self.retry_at,
        )

    def copy(self) -> SyncLogRow:
        return SyncLogRow(*_SYNC_LOG_FIELDS(self))


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


def _getter(cls: type[Any]) -> Any:
    return attrgetter(*(f.name for f in fields(cls)))


_SYNC_LOG_FIELDS = _getter(SyncLogRow)
