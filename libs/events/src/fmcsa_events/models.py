"""The events of fmcsa-sync: frozen, past-tense facts, each with a stable TYPE and a VERSION.

Rules (style.md 2.6): a new optional field keeps VERSION; any other change bumps VERSION and adds a
static `upcast_v<N>_v<N+1>(payload) -> payload` on the class, which the decoder applies to stored
payloads of older versions. Readers ignore unknown fields, so an older reader survives a newer writer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema, model_validator

from fmcsa_events.identifiers import DotNumber, SourceKey
from fmcsa_events.schedules import cron_problem
from fmcsa_events.text import CleanText, SafeText

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Event(BaseModel):
    """Base of every event: frozen; unknown fields ignored so older readers tolerate newer writers."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    @classmethod
    def upcasters(cls) -> dict[int, Upcaster]:
        """Map of `from_version -> upcaster` found as `upcast_v<N>_v<N+1>` static methods."""
        found: dict[int, Upcaster] = {}
        for version in range(1, cls.VERSION):
            upcaster = getattr(cls, f"upcast_v{version}_v{version + 1}", None)
            if upcaster is not None:
                found[version] = upcaster
        return found


class Trigger(StrEnum):
    """Why a sync was requested."""

    SCHEDULED = "scheduled"
    CATCH_UP = "catch_up"
    MANUAL = "manual"


class ErrorKind(StrEnum):
    """Why a sync failed; the failure vocabulary of ARCHITECTURE.md. `not_configured` is never retried."""

    NOT_CONFIGURED = "not_configured"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"
    TIMEOUT = "timeout"
    INVALID_RESPONSE = "invalid_response"
    SUSPECT_DROP = "suspect_drop"
    """The answer would drop most of what is held for the carrier: kept back until the next fetch."""
    INTERNAL = "internal"


class CompanyRegistered(Event):
    """A company (a motor carrier, by DOT number) is to be kept in sync. Registering twice is harmless."""

    TYPE: ClassVar[str] = "company_registered"
    dot: DotNumber
    name: SafeText | None = Field(None, max_length=200)
    registered_by: SafeText = Field("system", max_length=200)


class CompanyRemoved(Event):
    """A company is no longer kept in sync; its history stays in the stream."""

    TYPE: ClassVar[str] = "company_removed"
    dot: DotNumber
    removed_by: SafeText = Field("system", max_length=200)


class ScheduleChanged(Event):
    """A source's schedule: an interval of 5-1440 minutes or a cron expression, and an enabled flag; the rules
    are `fmcsa_events.schedules` (a cron expression that breaks them does not validate).
    """

    TYPE: ClassVar[str] = "schedule_changed"
    source: SourceKey
    interval_minutes: int | None = Field(None, ge=5, le=1440)
    cron: SafeText | None = Field(None, min_length=1, max_length=120)
    enabled: bool = True
    changed_by: SafeText = Field("system", max_length=200)

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleChanged:
        if (self.interval_minutes is None) == (self.cron is None):
            raise ValueError("a schedule has exactly one of interval_minutes and cron")
        if self.cron is not None and (problem := cron_problem(self.cron)) is not None:
            raise ValueError(problem)  # the scheduler's rules (fmcsa_events.schedules): never published
        return self


class SyncRequested(Event):
    """One request to sync one (company, source); it ends in exactly one SourceSynced or SourceFailed.

    `slot` is the scheduled slot start for scheduled and catch-up requests (it makes the event id);
    `deadline` is when the request is answered as `timeout` if nothing answered it before.
    """

    TYPE: ClassVar[str] = "sync_requested"
    request_id: UUID
    dot: DotNumber
    source: SourceKey
    trigger: Trigger
    requested_by: SafeText = Field("scheduler", max_length=200)
    requested_at: AwareDatetime
    deadline: AwareDatetime
    slot: AwareDatetime | None = None

    @model_validator(mode="after")
    def _slot_for_scheduled(self) -> SyncRequested:
        if self.trigger in (Trigger.SCHEDULED, Trigger.CATCH_UP) and self.slot is None:
            raise ValueError("a scheduled or catch-up request carries its slot")
        if self.deadline <= self.requested_at:
            raise ValueError("deadline must be after requested_at")
        return self


class Counts(BaseModel):
    """What one fetch did to the source's store."""

    model_config = ConfigDict(frozen=True)
    fetched: int = Field(0, ge=0)
    inserted: int = Field(0, ge=0)
    updated: int = Field(0, ge=0)
    unchanged: int = Field(0, ge=0)


class SourceSynced(Event):
    """Terminal outcome: the source fetched and stored the carrier's data. At most one per request_id.

    `upstream_as_of` is the date the data itself describes (the SMS run for csa, the dataset's update
    for violations, the snapshot's `latest_update` for inspections); `summary` is the compact data
    the status view shows, shaped per source; a non-integer number in it is exact decimal text
    (`fmcsa_events.decimals.text`).
    """

    TYPE: ClassVar[str] = "source_synced"
    request_id: UUID
    dot: DotNumber
    source: SourceKey
    counts: Counts
    attempts: int = Field(ge=1)
    started_at: AwareDatetime
    finished_at: AwareDatetime
    retrieved_at: AwareDatetime | None = None
    upstream_as_of: datetime | None = None
    summary: dict[str, JsonValue] = Field(default_factory=dict)
    checked_unchanged: bool = False
    """True when the source only checked the upstream's publication (e.g. a Socrata dataset's
    `rowsUpdatedAt`) and found nothing newer than what it holds: no data was fetched, `counts` are zero,
    `retrieved_at` and `upstream_as_of` are those of the data held, and `summary` describes it."""

    @property
    def duration_ms(self) -> int:
        return max(0, int((self.finished_at - self.started_at).total_seconds() * 1000))


class SourceFailed(Event):
    """Terminal outcome: the source gave up on one request. At most one outcome per request_id.

    `message` is short and for people; `detail` is scrubbed of secrets and for engineers.
    """

    TYPE: ClassVar[str] = "source_failed"
    request_id: UUID
    dot: DotNumber
    source: SourceKey
    kind: ErrorKind
    retryable: bool
    attempts: int = Field(ge=1)
    message: CleanText = Field(max_length=500)
    detail: CleanText = Field("", max_length=2000)
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime


class SyncAttemptFailed(Event):
    """Progress, not an outcome: one attempt of a request failed retryably and the request waits for
    its next attempt (the source handed it back to the bus with a delay). Informational: a request may
    end without any, and its one terminal outcome follows whatever these say.

    `attempt` is the attempt that failed (1-based) of at most `max_attempts`; `retry_at` is when the
    next attempt is due; `first_attempt_at` is when the first attempt started (the outcome's
    `started_at` is the same instant, so "took" runs from the first attempt to the outcome).
    """

    TYPE: ClassVar[str] = "sync_attempt_failed"
    request_id: UUID
    dot: DotNumber
    source: SourceKey
    attempt: int = Field(ge=1)
    max_attempts: int = Field(ge=1)
    kind: ErrorKind
    message: CleanText = Field(max_length=500)
    retry_at: AwareDatetime
    first_attempt_at: AwareDatetime


class ChangeKind(StrEnum):
    """What changed in the public record of a carrier, as a source service observed it."""

    # csa
    BASIC_PERCENTILE_CHANGED = "basic_percentile_changed"
    BASIC_ALERT_STARTED = "basic_alert_started"
    BASIC_ALERT_CLEARED = "basic_alert_cleared"
    BASIC_BECAME_PUBLIC = "basic_became_public"
    BASIC_BECAME_NOT_PUBLIC = "basic_became_not_public"
    # violations
    VIOLATIONS_ADDED = "violations_added"
    VIOLATIONS_AGED_OUT = "violations_aged_out"
    # inspections
    OPERATING_STATUS_CHANGED = "operating_status_changed"
    SAFETY_RATING_CHANGED = "safety_rating_changed"
    CRASHES_ADDED = "crashes_added"
    OOS_RATE_CHANGED = "oos_rate_changed"
    # authority (operating authority, docket numbers, out-of-service orders, insurance)
    AUTHORITY_STATUS_CHANGED = "authority_status_changed"
    AUTHORITY_REVOCATION_PENDING = "authority_revocation_pending"
    DOCKET_ADDED = "docket_added"
    OOS_ORDER_ISSUED = "oos_order_issued"
    OOS_ORDER_LIFTED = "oos_order_lifted"
    INSURANCE_FILING_ADDED = "insurance_filing_added"
    INSURANCE_CANCELLATION_PENDING = "insurance_cancellation_pending"
    INSURANCE_CANCELLED = "insurance_cancelled"
    INSURANCE_BELOW_REQUIRED = "insurance_below_required"
    # the status service, of every source: the carrier record's risk light moved
    RISK_CHANGED = "risk_changed"


CHANGE_KINDS_BY_SOURCE: dict[SourceKey, tuple[ChangeKind, ...]] = {
    SourceKey.CSA: (
        ChangeKind.BASIC_PERCENTILE_CHANGED,
        ChangeKind.BASIC_ALERT_STARTED,
        ChangeKind.BASIC_ALERT_CLEARED,
        ChangeKind.BASIC_BECAME_PUBLIC,
        ChangeKind.BASIC_BECAME_NOT_PUBLIC,
    ),
    SourceKey.VIOLATIONS: (ChangeKind.VIOLATIONS_ADDED, ChangeKind.VIOLATIONS_AGED_OUT),
    SourceKey.INSPECTIONS: (
        ChangeKind.OPERATING_STATUS_CHANGED,
        ChangeKind.SAFETY_RATING_CHANGED,
        ChangeKind.CRASHES_ADDED,
        ChangeKind.OOS_RATE_CHANGED,
    ),
    SourceKey.AUTHORITY: (
        ChangeKind.AUTHORITY_STATUS_CHANGED,
        ChangeKind.AUTHORITY_REVOCATION_PENDING,
        ChangeKind.DOCKET_ADDED,
        ChangeKind.OOS_ORDER_ISSUED,
        ChangeKind.OOS_ORDER_LIFTED,
        ChangeKind.INSURANCE_FILING_ADDED,
        ChangeKind.INSURANCE_CANCELLATION_PENDING,
        ChangeKind.INSURANCE_CANCELLED,
        ChangeKind.INSURANCE_BELOW_REQUIRED,
    ),
}


DERIVED_CHANGE_KINDS: tuple[ChangeKind, ...] = (ChangeKind.RISK_CHANGED,)
"""Kinds no source observes: the status service derives them from the carrier record (`risk_changed`:
subject `risk`, before/after `{light, reasons}`) and publishes them under the source whose success
moved the record, so they are valid with every source."""


def change_kinds_of(source: SourceKey) -> tuple[ChangeKind, ...]:
    """The kinds a change of `source` may have: its own and the derived ones."""
    return CHANGE_KINDS_BY_SOURCE[SourceKey(source)] + DERIVED_CHANGE_KINDS


class CarrierDataChanged(Event):
    """One changed fact of a carrier's public record, with the value before and after.

    Published by the source service that observed it, for the request that fetched it, before that
    request's `SourceSynced`; a derived kind (`DERIVED_CHANGE_KINDS`: `risk_changed`) by the status
    service, after the `SourceSynced` that moved the carrier record, under that success's request id.
    `subject` names what changed within the kind (a BASIC such as
    `unsafe_driving`, `us_vehicle` for an OOS rate, or the kind itself); `before` and `after` are
    small JSON values (a percentile, a status, a count with details); a non-integer number in them is
    the exact decimal text the upstream sent (`fmcsa_events.decimals.text`), and an older event's JSON
    number still decodes. A company's first successful
    fetch is a baseline and produces no change. The event id is `change:<request_id>:<kind>:<subject>`,
    so a redelivered request publishes nothing new.
    """

    TYPE: ClassVar[str] = "carrier_data_changed"
    request_id: UUID
    dot: DotNumber
    source: SourceKey
    kind: ChangeKind
    subject: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9_]+$")
    before: JsonValue = None
    after: JsonValue = None
    upstream_as_of: datetime | None = None
    observed_at: AwareDatetime

    @model_validator(mode="after")
    def _kind_of_its_source(self) -> CarrierDataChanged:
        if self.kind not in change_kinds_of(self.source):
            raise ValueError(f"{self.kind} is not a change kind of the {self.source} source")
        return self


VIOLATIONS_PAGE_ROWS = 500
"""At most this many violation rows in one `ViolationsListed` (and in a violations `SourceSynced`'s
summary): each row's description is cut at 200 characters by the source, so a page stays under 200 KB,
below the 256 KiB every consumer decodes (`fmcsa_events.decoder.MAX_PAYLOAD_BYTES`)."""


class ViolationsListed(Event):
    """One page of the violation rows a violations fetch listed, beyond the first `VIOLATIONS_PAGE_ROWS`
    its `SourceSynced` summary carries: the rows at `offset` (0-based, newest inspection first) of the
    request's `total` rows, each shaped as the summary's `rows` (`fmcsa_source_violations.domain.summary.
    violation_row`). Published by the violations source for the request that fetched them, before its
    `SourceSynced` (saved with that outcome, so a redelivered request republishes the same pages); the
    event id is `listed:<request_id>:<offset>`. The status service folds them into the carrier's
    violation rows when that success is the pair's newest.
    """

    TYPE: ClassVar[str] = "violations_listed"
    request_id: UUID
    dot: DotNumber
    source: SourceKey = SourceKey.VIOLATIONS
    offset: int = Field(ge=1, le=10_000_000)
    total: int = Field(ge=1, le=10_000_000)
    rows: tuple[dict[str, JsonValue], ...] = Field(min_length=1, max_length=VIOLATIONS_PAGE_ROWS)

    @model_validator(mode="after")
    def _a_violations_page(self) -> ViolationsListed:
        if self.source != SourceKey.VIOLATIONS:
            raise ValueError("only the violations source lists violation rows")
        if self.offset + len(self.rows) > self.total:
            raise ValueError("a page's rows end after the list's total")
        return self


RULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""An alert rule's name: lower-case letters, digits, `_` and `-`; it is a subject token."""


SUBJECT_PATTERN = r"^[a-z0-9_]{1,80}$"
"""A change's subject (`unsafe_driving`, `us_driver`...), as an alert condition names it."""


class AlertConditions(BaseModel):
    """Optional limits a change must meet besides its kind and company; unset means no limit.

    `percentile_at_least`: the value after the change is at least N (a BASIC percentile; the percent
    of an out-of-service rate). `delta_at_least`: that value moved by at least N points either way.
    `subjects`: only these subjects (`unsafe_driving`, `us_driver`, ...). A condition a change has no
    value for (a new violation has no percentile) is not met. The change's value is compared as an
    exact `Decimal` with the limit as written (`fmcsa_alerts.rules`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    percentile_at_least: float | None = Field(None, ge=0, le=100)
    delta_at_least: float | None = Field(None, gt=0, le=100)
    subjects: (
        tuple[Annotated[str, WithJsonSchema({"type": "string", "pattern": SUBJECT_PATTERN})], ...] | None
    ) = Field(None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _subjects_are_tokens(self) -> AlertConditions:
        for subject in self.subjects or ():
            if re.fullmatch(SUBJECT_PATTERN, subject) is None:
                raise ValueError(f"a subject is lower-case letters, digits and _, got {subject[:40]!r}")
        return self


class WebhookDestination(BaseModel):
    """Where a rule's webhooks go: an http(s) URL and its signing secret, sealed (encrypted with the
    deployment's `FMCSA_WEBHOOK_SECRET_KEY`); the plaintext secret is never in an event.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    url: SafeText = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    sealed_secret: SafeText = Field(min_length=1, max_length=1000)


class AlertRuleChanged(Event):
    """An alert rule was created or replaced: which change kinds, which companies (None: all), which
    conditions, and where to send webhooks. The last one per name is in force until `AlertRuleRemoved`.
    """

    TYPE: ClassVar[str] = "alert_rule_changed"
    name: str = Field(pattern=RULE_NAME_PATTERN)
    kinds: tuple[ChangeKind, ...] = Field(min_length=1)
    dots: tuple[DotNumber, ...] | None = Field(None, max_length=10_000)
    conditions: AlertConditions = Field(default_factory=AlertConditions)
    destinations: tuple[WebhookDestination, ...] = Field(min_length=1, max_length=5)
    enabled: bool = True
    changed_by: SafeText = Field("system", max_length=200)


class AlertRuleRemoved(Event):
    """An alert rule was deleted; changes after it fire nothing for that name."""

    TYPE: ClassVar[str] = "alert_rule_removed"
    name: str = Field(pattern=RULE_NAME_PATTERN)
    removed_by: SafeText = Field("system", max_length=200)


class WebhookResendRequested(Event):
    """Someone (an operator) asked the notifier to send one delivery again."""

    TYPE: ClassVar[str] = "webhook_resend_requested"
    delivery_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    requested_by: SafeText = Field("system", max_length=200)


EVENT_TYPES: tuple[type[Event], ...] = (
    CompanyRegistered,
    CompanyRemoved,
    ScheduleChanged,
    SyncRequested,
    SourceSynced,
    SourceFailed,
    SyncAttemptFailed,
    CarrierDataChanged,
    ViolationsListed,
    AlertRuleChanged,
    AlertRuleRemoved,
    WebhookResendRequested,
)
"""Every event class; the decoder, the subjects and ARCHITECTURE.md's catalog are checked against it."""

EVENT_BY_TYPE: dict[str, type[Event]] = {cls.TYPE: cls for cls in EVENT_TYPES}

TerminalOutcome = SourceSynced | SourceFailed
