"""The API's request and response models (never table classes): what OpenAPI documents and clients see.

Request models refuse unknown fields, validate DOT numbers with `fmcsa_events.identifiers.DotNumber`
and free text with `fmcsa_events.text.SafeText` (no control character), so a refused value answers
422 with its reason before any handler runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from fmcsa_events.identifiers import DotNumber, SourceKey
from fmcsa_events.models import Trigger
from fmcsa_events.text import SafeText
from fmcsa_gateway.domain import NextDue
from fmcsa_status_view.gaps import GapState
from fmcsa_status_view.models import CompanyStatus, HistorySeries, SourceStatus, Summary, SyncState
from fmcsa_status_view.rows import ChangeRow, SyncLogRow
from fmcsa_status_view.syncstatus import sync_status_block


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- companies ---------------------------------------------------------------------------------------


class RegisterCompany(Request):
    dot_number: DotNumber = Field(description="USDOT number: 1 to 8 digits.", examples=["2847193"])
    name: SafeText | None = Field(None, max_length=200, description="A label for people; optional.")


class CompanyRegistration(Answer):
    dot_number: str
    name: str | None
    created: bool = Field(description="False when the company was already registered (nothing published).")
    event_id: str | None = Field(description="Id of the CompanyRegistered event, when one was published.")


class CompanyRemoval(Answer):
    dot_number: str
    event_id: str


class ImportRow(Request):
    dot_number: str | int = Field(description="USDOT number: 1 to 8 digits.")
    name: SafeText | None = None


class InvalidImportRow(Answer):
    line: int = Field(description="CSV: the line in the file (the header is line 1). JSON: the item's index.")
    value: str = Field(description="The refused DOT value, cut to 40 characters.")
    reason: str


class ImportResult(Answer):
    rows: int
    accepted: int = Field(description="New companies; one CompanyRegistered each.")
    duplicate: int = Field(
        description="Rows whose DOT appeared earlier in the upload or is already registered."
    )
    invalid: int
    invalid_rows: list[InvalidImportRow]


# --- sync --------------------------------------------------------------------------------------------


class TriggerSync(Request):
    dot_numbers: list[DotNumber] | None = Field(
        None,
        max_length=100_000,
        description="Registered companies to sync (at most FMCSA_GATEWAY_TRIGGER_MAX_DOTS, 1,000 by "
        "default); empty or absent means every registered one.",
    )
    sources: list[SourceKey] | None = Field(None, description="Sources to sync; empty or absent means all.")
    organizationId: DotNumber | None = Field(  # the seed systems' name (routes/seed.py)
        None, description="One DOT number, as the seed systems named it; added to `dot_numbers`."
    )


class StartedRequest(Answer):
    dot_number: str
    source: SourceKey
    request_id: UUID
    deadline: datetime


class SkippedRequest(Answer):
    dot_number: str
    source: SourceKey
    reason: str = "in_flight"
    held_by_request_id: UUID
    held_by_trigger: Trigger
    held_until: datetime


class TriggerAccepted(Answer):
    started: list[StartedRequest]
    skipped: list[SkippedRequest]
    batchId: UUID = Field(  # the seed systems' name (routes/seed.py)
        description="This trigger's id: every request it started logs it (`sync_triggered`, `batch_id`)."
    )


# --- schedules ---------------------------------------------------------------------------------------


_MINUTE = r"(?:[0-9]|[1-5][0-9]|\*/(?:5|6|10|12|15|20|30))"
_HOUR = r"(?:[0-9]|1[0-9]|2[0-3])"
_DAY = r"(?:[1-9]|1[0-9]|2[0-8])"
_MONTH = r"(?:[1-9]|1[0-2])"
CRON_PATTERN = (
    r"^(?:@(?:yearly|annually|monthly|weekly|daily|midnight|hourly)"
    rf"|{_MINUTE} (?:\*|\*/(?:[1-9]|1[0-9]|2[0-3])|{_HOUR}(?:,{_HOUR})*)"
    rf" (?:\*|{_DAY}(?:,{_DAY})*) (?:\*|{_MONTH}(?:,{_MONTH})*) (?:\*|[0-6](?:,[0-6])*))$"
)
"""The cron expressions the schema documents: an alias, or five fields whose minute is one minute or a
step that divides the hour (so it never fires less than 5 minutes apart) and whose day is 1-28 (so it
fires every month). `domain.check_schedule` accepts every one of them, and more: any expression croniter
reads that never fires less than 5 minutes apart."""


class PutSchedule(Request):
    """Exactly one of `interval_minutes` and `cron`."""

    # The bounds are documented here and checked by domain.check_schedule, whose reason people read.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["interval_minutes"], "properties": {"cron": {"type": "null"}}},
                {"required": ["cron"], "properties": {"interval_minutes": {"type": "null"}}},
            ]
        },
    )
    interval_minutes: int | None = Field(
        None,
        description="Every N minutes, 5 to 1440; or give `cron`.",
        json_schema_extra={"minimum": 5, "maximum": 1440},
    )
    cron: SafeText | None = Field(
        None,
        max_length=120,
        description="A cron expression in UTC (5 fields or @hourly...), at least 5 minutes apart. The "
        "pattern is the forms always accepted; any other that croniter reads and that never fires less "
        "than 5 minutes apart is accepted too.",
        json_schema_extra={"pattern": CRON_PATTERN},
    )
    enabled: bool = True


class Schedule(Answer):
    source: SourceKey
    interval_minutes: int | None
    cron: str | None
    enabled: bool
    default: bool = Field(description="True while no ScheduleChanged was published for this source.")
    changed_by: str | None
    changed_at: AwareDatetime | None


class Schedules(Answer):
    items: list[Schedule]


class SchedulerSource(Answer):
    model_config = ConfigDict(frozen=True, extra="allow")
    enabled: bool | None = None
    interval_minutes: int | None = None
    cron: str | None = None
    next_due_at: datetime | None = None
    next_slot_at: datetime | None = None
    due: int | None = None
    in_flight: int | None = None
    skipped: dict[str, int] | None = None
    waiting: int | None = Field(None, description="Due pairs the in-flight cap holds back (stalest first).")
    in_flight_cap: int | None = Field(None, description="Most open requests: served within the deadline.")
    syncs_per_s: float | None = Field(None, description="Expected syncs per second at the source's pace.")
    behind: bool | None = Field(None, description="Its companies cannot all be synced within the interval.")
    capacity_message: str | None = None


class SchedulerStatus(Answer):
    """The scheduler's heartbeat from `scheduler.status` in the `fmcsa_state` bucket."""

    model_config = ConfigDict(frozen=True, extra="allow")
    known: bool = Field(description="False when no scheduler has written its status yet.")
    running: bool = Field(description="A replica is running and its heartbeat is fresh.")
    stale: bool = Field(description="The heartbeat is older than three heartbeat intervals.")
    enabled: bool | None = None
    heartbeat_at: datetime | None = None
    last_tick_at: datetime | None = None
    replica: str | None = None
    companies: int | None = None
    due: int | None = None
    in_flight: int | None = None
    skipped: dict[str, int] | None = None
    sources: dict[str, SchedulerSource] = Field(default_factory=dict)
    capacity_warnings: list[str] = Field(
        default_factory=list,
        description='Sources whose companies cannot all be kept fresh, e.g. "csa: 100,000 companies need '
        '27.8 h a cycle at 1 sync/s; interval 6 h".',
    )


class UpstreamPace(Answer):
    """A source's shared pace towards one upstream host (`fmcsa_pace`, see `fmcsa_source_kit.pacing`)."""

    model_config = ConfigDict(frozen=True)
    source: str
    host: str = Field(description="The upstream host, as its KV key token (`.` and `:` become `_`).")
    pace_per_s: float = Field(description="Calls per second allowed now, all replicas together.")
    ceiling_per_s: float = Field(description="The configured rate the pace starts at and never exceeds.")
    limit_seen_per_s: float | None = Field(description="The pace at which the upstream last pushed back.")
    throttled: int = Field(description="429s and Retry-After answers seen by any replica, in all.")
    changed_at: datetime | None
    replicas: int = Field(description="Replicas with a live heartbeat, sharing the pace.")
    waited_s: float = Field(description="Seconds the live replicas' calls have waited for the pace.")


# --- reads -------------------------------------------------------------------------------------------


class Page(Answer):
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


class CountsOut(Answer):
    fetched: int
    inserted: int
    updated: int
    unchanged: int


class LastErrorOut(Answer):
    request_id: str
    kind: str
    message: str
    retryable: bool
    at: datetime
    attempts: int | None


class RetryOut(Answer):
    """The request waits for its next attempt: attempt `attempt` of at most `max_attempts` failed."""

    attempt: int
    max_attempts: int
    kind: str = Field(description="The failure kind of the attempt that failed.")
    message: str
    next_attempt_at: datetime = Field(description="When the next attempt is due.")


class SourceBadge(Answer):
    """One source of one company, as the companies list shows it."""

    state: SyncState
    failing: bool
    consecutive_failures: int
    last_requested_at: datetime | None
    last_finished_at: datetime | None
    last_success_at: datetime | None
    upstream_as_of: datetime | None
    error_kind: str | None = Field(description="Kind of the newest error while the source is failing.")
    retry: RetryOut | None = Field(None, description="Set while the newest request waits for a retry.")

    @field_validator("error_kind")
    @classmethod
    def _while_failing(cls, kind: str | None, info: ValidationInfo) -> str | None:
        return kind if info.data.get("failing") else None


class NextDueOut(Answer):
    """When the scheduler next requests this (company, source), estimated from outside the scheduler."""

    at: datetime | None = Field(
        description="The next scheduled request: the last scheduled one plus the interval, or the cron "
        "expression's next fire after it. Null when unknown (never scheduled yet, or disabled). It may lie "
        "in the past while the scheduler is late or backing off a failing pair."
    )
    enabled: bool = Field(description="False while the source's schedule is disabled: never due.")
    within_minutes: int | None = Field(
        description="An interval schedule's interval: a pair never scheduled yet comes due within it."
    )


class SourceStatusOut(Answer):
    """One source of one company: the three times (upstream as-of, last success, last attempt with its
    outcome, `state`) and when it is next due.
    """

    source: SourceKey
    state: SyncState
    failing: bool
    consecutive_failures: int
    last_request_id: str | None
    last_requested_at: datetime | None
    last_trigger: str | None
    last_requested_by: str | None
    last_finished_at: datetime | None
    last_success_at: datetime | None
    last_success_request_id: str | None
    last_counts: CountsOut | None
    last_duration_ms: int | None
    upstream_as_of: datetime | None
    retrieved_at: datetime | None
    checked_unchanged: bool = Field(
        False,
        description="The last success only checked the upstream's publication: nothing newer than the data "
        "held (retrieved at `retrieved_at`, as of `upstream_as_of`) was published, so nothing was fetched.",
    )
    last_error: LastErrorOut | None
    summary: dict[str, Any] | None = Field(
        description="The source's compact data of its last success.",
        validation_alias=AliasChoices("summary", "last_summary"),
    )
    requests: int
    succeeded: int
    failed: int
    next_due: NextDueOut | None = Field(
        None, description="When the scheduler next requests it; null where it was not computed."
    )
    retry: RetryOut | None = Field(
        None, description="Set while the newest request waits for its next attempt (state `requested`)."
    )

    @field_validator("checked_unchanged", mode="before")
    @classmethod
    def _none_is_not_checked(cls, value: object) -> bool:
        return bool(value)  # rows folded before the column existed hold NULL


class CompanyItem(Answer):
    dot_number: str = Field(validation_alias=AliasChoices("dot_number", "dot"))
    name: str | None
    active: bool
    registered_at: datetime | None
    last_run: datetime | None
    last_success_at: datetime | None
    success: bool
    failing: bool
    never_synced: bool
    failing_sources: list[SourceKey]
    sources: dict[str, SourceBadge]


class CompanyPage(Page):
    items: list[CompanyItem]


class SyncStatusBlock(Answer):
    """The seeds' `syncStatus` shape, for clients that know only that."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    lastRun: str | None  # the seeds' field names
    success: bool
    errors: list[dict[str, Any]]
    csaScoresLastSync: str | None
    violationsLastSync: str | None
    inspectionsLastSync: str | None
    authorityLastSync: str | None


class CompanyStatusOut(Answer):
    dot_number: str = Field(validation_alias=AliasChoices("dot_number", "dot"))
    name: str | None
    active: bool
    registered_at: datetime | None
    removed_at: datetime | None
    last_run: datetime | None
    last_success_at: datetime | None
    success: bool
    failing: bool
    never_synced: bool
    failing_sources: list[SourceKey]
    sources: dict[str, SourceStatusOut]
    syncStatus: SyncStatusBlock  # the seeds' name


class SyncLogItem(Answer):
    """One sync-log row (`fmcsa_status_view.rows.SyncLogRow`): `SyncLogItem.of(row)`."""

    request_id: str
    dot_number: str = Field(validation_alias=AliasChoices("dot_number", "dot"))
    source: SourceKey
    status: SyncState
    trigger: str | None
    requested_by: str | None
    requested_at: datetime | None
    deadline: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    attempts: int | None
    counts: CountsOut | None
    upstream_as_of: datetime | None
    checked_unchanged: bool = Field(
        False, description="A success that only checked the upstream's publication and fetched nothing."
    )
    error_kind: str | None
    error_message: str | None
    error_retryable: bool | None
    retry: RetryOut | None = Field(
        None, description="Set while the request waits for its next attempt (status `requested`)."
    )

    @field_validator("checked_unchanged", mode="before")
    @classmethod
    def _none_is_not_checked(cls, value: object) -> bool:
        return bool(value)  # rows folded before the column existed hold NULL

    @classmethod
    def of(cls, row: SyncLogRow) -> SyncLogItem:
        return cls.model_validate(row, from_attributes=True)


class SyncLogPage(Page):
    items: list[SyncLogItem]


class SourceTotals(Answer):
    source: SourceKey = Field(validation_alias=AliasChoices("source", "scope"))
    companies: int
    failing: int
    never_synced: int
    requests: int
    succeeded: int
    failed: int
    last_finished_at: datetime | None
    last_success_at: datetime | None


class DayOutcomesOut(Answer):
    day: date
    source: SourceKey
    succeeded: int
    failed: int


class SummaryOut(Answer):
    companies: int
    failing: int
    never_synced: int
    requests: int
    succeeded: int
    failed: int
    last_sync_at: datetime | None
    last_success_at: datetime | None
    per_source: list[SourceTotals]
    outcomes_per_day: list[DayOutcomesOut]
    applied_position: int = Field(
        description="The last stream sequence the status view has folded.",
        validation_alias=AliasChoices("applied_position", "position"),
    )


class ChangeItem(Answer):
    """One changed fact of a carrier's public record (a `CarrierDataChanged` the projector folded)."""

    position: int = Field(description="The stream sequence of the change: the feed's order.")
    event_id: str
    request_id: UUID = Field(description="The sync request whose fetch observed the change.")
    dot_number: str = Field(validation_alias=AliasChoices("dot_number", "dot"))
    source: SourceKey
    kind: str = Field(description="What changed, e.g. `basic_alert_started`, `violations_added`.")
    subject: str = Field(description="What changed within the kind: a BASIC, `us_vehicle`, or the kind.")
    before: Any = Field(description="The value before the change (JSON; null when there was none).")
    after: Any = Field(description="The value after the change (JSON; null when there is none).")
    upstream_as_of: datetime | None = Field(description="The date the upstream data describes.")
    observed_at: datetime = Field(description="When the source service saw the change.")

    @classmethod
    def of(cls, row: ChangeRow) -> ChangeItem:
        return cls.model_validate(row, from_attributes=True)


class ChangePage(Page):
    items: list[ChangeItem]


class HistoryPointOut(Answer):
    as_of: datetime = Field(description="The upstream as-of date of the values (CSA: the SMS run).")
    values: dict[str, float | None] = Field(
        description="The values on that date; csa: `percentile` (null while Not Public) and `measure`."
    )


class HistorySeriesOut(Answer):
    subject: str = Field(description="What the series follows: for csa a BASIC, e.g. `unsafe_driving`.")
    points: list[HistoryPointOut] = Field(description="Oldest first.")


class CompanyHistory(Answer):
    dot_number: str
    source: SourceKey
    series: list[HistorySeriesOut]


class GapOut(Answer):
    """A month a monthly source's history has no point for (`fmcsa_status_view.gaps`)."""

    source: SourceKey
    month: date = Field(description="The first day of the missing month.")
    upstream_keeps_it: bool = Field(
        description="Whether the upstream still serves that month (never filled in with a guess)."
    )
    why: str
    state: GapState = Field(
        description="`backfilled`: a later read brought that month's rows (violations, within the "
        "dataset's 24 months); `pending`: the upstream still serves it and the next read brings it; "
        "`unrecoverable`: the upstream no longer serves it (csa always). The month never gets a history "
        "point either way."
    )
    backfilled_by: date | None = Field(
        description="The as-of month of the read that brought the month's rows (`backfilled` only)."
    )


class CompanyGaps(Answer):
    dot_number: str
    gaps: list[GapOut]


# --- from the status view's rows and read models -------------------------------------------------
#
# Answers validate from what `StatusView` returns (`from_attributes`): an answer's field reads the
# attribute of its name (nested answers too), or the one its `validation_alias` names where the API
# speaks otherwise (`dot_number` for `dot`); `_fields` adds what the view does not hold.


def _fields(source: Any, **given: Any) -> dict[str, Any]:
    """A read model's fields by name (a shallow `asdict`), with `given` added or replaced."""
    return {**{f.name: getattr(source, f.name) for f in fields(source)}, **given}


def next_due_out(due: NextDue) -> NextDueOut:
    within = None if due.within is None else int(due.within.total_seconds() // 60)
    return NextDueOut(at=due.at, enabled=due.enabled, within_minutes=within)


def company_item(company: CompanyStatus) -> CompanyItem:
    return CompanyItem.model_validate(company, from_attributes=True)


def source_status(status: SourceStatus, due: NextDue | None = None) -> SourceStatusOut:
    answer = SourceStatusOut.model_validate(status, from_attributes=True)
    return answer if due is None else answer.model_copy(update={"next_due": next_due_out(due)})


def company_status(
    company: CompanyStatus, due: Mapping[SourceKey, NextDue] | None = None
) -> CompanyStatusOut:
    """The company's status; `due` adds each source's next due time."""
    due = due or {}
    sources = {key: source_status(status, due.get(key)) for key, status in company.sources.items()}
    answer = _fields(company, sources=sources, syncStatus=sync_status_block(company))
    return CompanyStatusOut.model_validate(answer, from_attributes=True)


# --- the status GET's answer, encoded straight from the read model ------------------------------------
#
# `CompanyStatusOut` documents the answer (OpenAPI) and `company_status` builds it through pydantic;
# the status GET, the gateway's hottest route, skips both: `company_status_json` writes the same
# document (same fields in the same order, same values and nulls, the same datetime text) from the
# read model with one msgspec encode, about a third of the route's cost less. The answer-equality
# tests (`tests/unit/test_status_encoding.py`, `tests/integration/test_status_answers.py`) hold the two
# to the same bytes.

_ENCODE = msgspec.json.Encoder().encode


def _next_due_document(due: NextDue | None) -> dict[str, Any] | None:
    if due is None:
        return None
    within = None if due.within is None else int(due.within.total_seconds() // 60)
    return {"at": due.at, "enabled": due.enabled, "within_minutes": within}


def _source_document(status: SourceStatus, due: NextDue | None) -> dict[str, Any]:
    """`SourceStatusOut` of one source, as `model_dump(mode="json")` would give it (times as datetimes:
    msgspec writes them as pydantic does).
    """
    succeeded = status.success_request_id is not None
    error = None
    if status.error_request_id is not None and status.last_error_at is not None:
        error = {
            "request_id": status.error_request_id,
            "kind": status.error_kind or "",
            "message": status.error_message or "",
            "retryable": bool(status.error_retryable),
            "at": status.last_error_at,
            "attempts": status.error_attempts,
        }
    retry = status.retry
    return {
        "source": status.source,
        "state": status.state,
        "failing": status.failing,
        "consecutive_failures": status.consecutive_failures,
        "last_request_id": status.last_request_id,
        "last_requested_at": status.last_requested_at,
        "last_trigger": status.last_trigger,
        "last_requested_by": status.last_requested_by,
        "last_finished_at": status.last_finished_at,
        "last_success_at": status.last_success_at,
        "last_success_request_id": status.success_request_id,
        "last_counts": {
            "fetched": status.fetched or 0,
            "inserted": status.inserted or 0,
            "updated": status.updated or 0,
            "unchanged": status.unchanged or 0,
        }
        if succeeded
        else None,
        "last_duration_ms": status.success_duration_ms,
        "upstream_as_of": status.upstream_as_of,
        "retrieved_at": status.retrieved_at,
        "checked_unchanged": bool(status.checked_unchanged),
        "last_error": error,
        "summary": status.last_summary,
        "requests": status.requests,
        "succeeded": status.succeeded,
        "failed": status.failed,
        "next_due": _next_due_document(due),
        "retry": None
        if retry is None
        else {
            "attempt": retry.attempt,
            "max_attempts": retry.max_attempts,
            "kind": retry.kind,
            "message": retry.message,
            "next_attempt_at": retry.next_attempt_at,
        },
    }


def company_status_json(company: CompanyStatus, due: Mapping[SourceKey, NextDue] | None = None) -> bytes:
    """`company_status(company, due)` encoded as the API answers it, without building the models."""
    due = due or {}
    return _ENCODE(
        {
            "dot_number": company.dot,
            "name": company.name,
            "active": company.active,
            "registered_at": company.registered_at,
            "removed_at": company.removed_at,
            "last_run": company.last_run,
            "last_success_at": company.last_success_at,
            "success": company.success,
            "failing": company.failing,
            "never_synced": company.never_synced,
            "failing_sources": company.failing_sources,
            "sources": {
                key: _source_document(status, due.get(key)) for key, status in company.sources.items()
            },
            "syncStatus": sync_status_block(company),
        }
    )


def summary(view: Summary) -> SummaryOut:
    answer = _fields(view, per_source=list(view.per_source.values()))
    return SummaryOut.model_validate(answer, from_attributes=True)


def company_history(dot: str, source: SourceKey, series: Sequence[HistorySeries]) -> CompanyHistory:
    answer = {"dot_number": dot, "source": source, "series": series}
    return CompanyHistory.model_validate(answer, from_attributes=True)
