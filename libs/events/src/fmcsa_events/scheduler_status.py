"""The scheduler's status document: what a running scheduler replica writes about itself, and its key.

The scheduler rewrites it under `SCHEDULER_STATUS_KEY` in the `fmcsa_state` bucket
(`fmcsa_events.topology.STATE_BUCKET`) every `status_interval_s` (the latest heartbeat of any replica
wins; `replica` and `heartbeat_at` say whose and when); the gateway reads it for `GET
/api/scheduler/status` and the admin page. Both sides use this one definition, as they use
`fmcsa_events.inflight` for the in-flight markers. The fields are documented in
services/scheduler/README.md.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEDULER_STATUS_KEY = "scheduler.status"
"""The key of the document in the `fmcsa_state` bucket."""


class SchedulerSourceStatus(BaseModel):
    """One source as the scheduler sees it."""

    model_config = ConfigDict(frozen=True)
    enabled: bool
    interval_minutes: int | None
    cron: str | None
    schedule_since: AwareDatetime | None = Field(description="When the current schedule took effect.")
    next_due_at: AwareDatetime | None = Field(description="The earliest next due time of any company.")
    next_slot_at: AwareDatetime | None = Field(description="Start of the next slot after now.")
    due: int = Field(description="Pairs that came due since the previous heartbeat.")
    published: int = Field(description="Requests published since this replica started.")
    in_flight: int = Field(description="Open requests this replica saw and no outcome or deadline ended yet.")
    backing_off: int = Field(description="Pairs held back by the back-off rule right now.")
    skipped: dict[str, int] = Field(
        description="Due slots not requested since this replica started, by reason."
    )
    waiting: int = Field(0, description="Due pairs the in-flight cap holds back; served stalest first.")
    in_flight_cap: int | None = Field(
        None, description="Most open requests at once: what the source serves within the deadline."
    )
    pace_per_s: float | None = Field(
        None, description="The source's pace, upstream calls/s of all its replicas (`fmcsa_pace`)."
    )
    pace_known: bool = Field(False, description="False: no pace written yet, its default ceiling is assumed.")
    calls_per_sync: float | None = Field(None, description="Upstream calls one sync costs in full.")
    unchanged_share: float | None = Field(
        None, description="Share of recent syncs that were `checked_unchanged` (cost no call)."
    )
    syncs_per_s: float | None = Field(
        None, description="Expected syncs per second, freshness savings included."
    )
    cycle_hours_needed: float | None = Field(
        None, description="Hours to sync every registered company once at `syncs_per_s`."
    )
    interval_hours: float | None = Field(
        None, description="The schedule's interval (a cron: its current gap)."
    )
    behind: bool = Field(False, description="`cycle_hours_needed` exceeds `interval_hours`.")
    capacity_message: str | None = Field(
        None, description="E.g. `csa: 100,000 companies need 27.8 h a cycle at 1 sync/s; interval 6 h`."
    )


class SchedulerStatus(BaseModel):
    """The document under `scheduler.status`: the fields of the old worker status, and more."""

    model_config = ConfigDict(frozen=True)
    replica: str = Field(description="The replica that wrote this heartbeat.")
    enabled: bool = Field(description="False: the scheduler folds and ticks but publishes nothing.")
    running: bool = Field(description="False once the replica stopped (its last heartbeat says so).")
    ready: bool = Field(description="The registry is folded and the timetable built.")
    heartbeat_at: AwareDatetime = Field(description="When this was written; stale means no replica runs.")
    started_at: AwareDatetime = Field(description="When this replica built its timetable.")
    last_tick_at: AwareDatetime | None = Field(description="The last tick of this replica.")
    checkpoint_at: AwareDatetime | None = Field(description="Every slot due until then was handled.")
    companies: int = Field(description="Registered companies.")
    due: int = Field(description="Pairs that came due since the previous heartbeat, all sources.")
    in_flight: int = Field(description="Open requests, all sources (see SchedulerSourceStatus.in_flight).")
    skipped: dict[str, int] = Field(description="Due slots not requested since this replica started.")
    rejected_schedules: int = Field(description="ScheduleChanged events refused (e.g. a bad cron).")
    undecodable_events: int = Field(description="Events this replica could not decode and skipped.")
    sources: dict[str, SchedulerSourceStatus] = Field(
        description="Per source, keyed by source key (csa, violations, inspections, authority)."
    )
    capacity_warnings: list[str] = Field(
        default_factory=list,
        description="The `capacity_message` of every enabled source that is `behind`: its registered "
        "companies cannot all be kept fresh within its interval.",
    )

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes | None) -> SchedulerStatus:
        """The document in `data`; pydantic's ValidationError when it is not one."""
        return cls.model_validate_json(data or b"{}")
