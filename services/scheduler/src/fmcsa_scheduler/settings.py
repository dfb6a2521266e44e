"""The scheduler's configuration: `FMCSA_SCHEDULER_<FIELD>` in the environment (shared fields: `FMCSA_`)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.schedules import (
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_SOURCE_INTERVAL_MINUTES,
    MAX_INTERVAL_MINUTES,
    MIN_INTERVAL_MINUTES,
)
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_scheduler.capacity import DEFAULT_CALLS_PER_SYNC

Clock = Callable[[], datetime]


class Settings(ServiceSettings):
    """The scheduler's settings. Every replica must run with the same `default_interval_minutes` and
    `source_interval_minutes`.
    """

    model_config = SettingsConfigDict(env_prefix="FMCSA_SCHEDULER_", extra="ignore", populate_by_name=True)

    enabled: bool = Field(
        True, description="Publish requests. False: fold, tick and report as usual, but publish nothing."
    )
    tick_s: float = Field(
        1.0, gt=0, le=60, description="Seconds between ticks (each tick sends what is due)."
    )
    max_per_tick: int = Field(
        5000, ge=1, description="Most (company, source) pairs one tick handles; the rest go in the next tick."
    )
    deadline_minutes: float = Field(
        30.0, gt=0, le=24 * 60, description="A request's deadline, from when it is sent (then: `timeout`)."
    )
    default_interval_minutes: int = Field(
        DEFAULT_INTERVAL_MINUTES,
        ge=MIN_INTERVAL_MINUTES,
        le=MAX_INTERVAL_MINUTES,
        description="Interval of a source that never had a ScheduleChanged and is not in "
        "source_interval_minutes.",
    )
    source_interval_minutes: dict[SourceKey, int] = Field(
        {source.value: minutes for source, minutes in DEFAULT_SOURCE_INTERVAL_MINUTES.items()},
        validate_default=True,
        description="Per source, the interval of a source that never had a ScheduleChanged (JSON, e.g. "
        '{"authority": 1440}; replaces the default map, unlisted sources use default_interval_minutes).',
    )
    capacity_safety: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share of the deadline the in-flight cap fills: a source holds at most "
        "pace / calls_per_sync x deadline x this many open requests (the rest of its due companies wait, "
        "the stalest first).",
    )
    calls_per_sync: dict[SourceKey, float] = Field(
        {source.value: calls for source, calls in DEFAULT_CALLS_PER_SYNC.items()},
        validate_default=True,
        description="Upstream calls one sync costs, per source (JSON object of source key to calls; "
        "unlisted sources keep their default).",
    )
    publish_in_flight: int = Field(
        256, ge=1, le=10_000, description="Most publishes (and marker writes) awaiting their ack at once."
    )
    backoff_max_hours: float = Field(
        24.0, gt=0, le=24 * 7, description="Longest back-off of a pair that keeps failing non-retryably."
    )
    status_interval_s: float = Field(
        5.0, gt=0, description="Seconds between heartbeats written to `scheduler.status` in `fmcsa_state`."
    )
    replica_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        max_length=100,
        description="Name of this replica in the status (default: host name and process id).",
    )
    clock_offset_s: float = Field(
        0.0, description="Tests and demos only: seconds added to the scheduler's clock (simulates downtime)."
    )
    clock_scale: float = Field(
        1.0,
        gt=0,
        le=10_000,
        description="Tests and demos only: the scheduler's time runs this many times faster.",
    )
    clock_anchor_s: float | None = Field(
        None,
        description="Tests and demos only: epoch seconds at which scaled time equals real time; unset: the "
        "moment the settings are read. Replicas that share a scale must share the anchor.",
    )

    @field_validator("calls_per_sync")
    @classmethod
    def _calls_positive(cls, value: dict[SourceKey, float]) -> dict[SourceKey, float]:
        for source, calls in value.items():
            if not 0 < calls <= 1000:
                raise ValueError(f"the calls per sync of {source.value} must be above 0 and at most 1000")
        return value

    def sync_costs(self) -> dict[SourceKey, float]:
        """Each source's upstream calls per sync: its entry, else the default table's."""
        costs = self.calls_per_sync
        return {source: costs.get(source, DEFAULT_CALLS_PER_SYNC[source]) for source in SourceKey}

    @field_validator("source_interval_minutes")
    @classmethod
    def _intervals_in_bounds(cls, value: dict[SourceKey, int]) -> dict[SourceKey, int]:
        for source, minutes in value.items():
            if not MIN_INTERVAL_MINUTES <= minutes <= MAX_INTERVAL_MINUTES:
                bounds = f"{MIN_INTERVAL_MINUTES} to {MAX_INTERVAL_MINUTES}"
                raise ValueError(f"the interval of {source.value} must be {bounds} minutes, got {minutes}")
        return value

    def default_intervals(self) -> dict[SourceKey, int]:
        """Each source's interval until a ScheduleChanged sets one: its entry, else the common default."""
        return {
            source: self.source_interval_minutes.get(source, self.default_interval_minutes)
            for source in SourceKey
        }

    def clock(self) -> Clock:
        """The scheduler's clock: real UTC time unless a test shifts or scales it (see the clock_ fields)."""
        return scaled_clock(
            offset_s=self.clock_offset_s,
            scale=self.clock_scale,
            anchor_s=self.clock_anchor_s if self.clock_anchor_s is not None else time.time(),
        )


def scaled_clock(*, offset_s: float = 0.0, scale: float = 1.0, anchor_s: float = 0.0) -> Clock:
    """`anchor + (real - anchor) * scale + offset`, as an aware UTC datetime. Tests build the same clock to
    stamp the events they publish, so both sides of a test agree on the time.
    """

    def now() -> datetime:
        real = time.time()
        return datetime.fromtimestamp(anchor_s + (real - anchor_s) * scale + offset_s, tz=UTC)

    return now
