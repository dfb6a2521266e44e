"""Drop-in routes for clients of the seed systems: thin aliases over the native routes, in the seed
worker's field names (camelCase, `success` beside the data, times as JavaScript's `toISOString()`).

| alias | native |
|---|---|
| `GET /api/sync/status?organizationId=&limit=` | `GET /api/sync/log?dot=&limit=` and the summary |
| `GET /api/sync/worker-status` | `GET /api/scheduler/status` |
| `GET /api/sync/intervals` | `GET /api/schedules` |
| `POST /api/sync/intervals/{type}` `{intervalMinutes}` | `PUT /api/schedules/{source}` `{interval_minutes}` |
| `POST /api/sync/trigger` `{organizationId}` | the same route's `dot_numbers` (`routes/sync.py`) |

An organization is a DOT number; a sync type is the seed's name of a source (`csa_scores`,
`violations`, `inspections`; `authority` is this system's own). Reads need a viewer, the interval change
an admin, as their native routes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK
from pydantic import Field

from fmcsa_events.identifiers import DOT_PATTERN, SourceKey
from fmcsa_gateway.auth import ADMIN, VIEWER, Caller
from fmcsa_gateway.bus_state import current_schedules, scheduler_status
from fmcsa_gateway.ports import PortsDep
from fmcsa_gateway.problems import ProblemError, problem_specs
from fmcsa_gateway.routes.companies import edge_dot
from fmcsa_gateway.routes.schedules import put_schedule
from fmcsa_gateway.schemas import Answer, PutSchedule
from fmcsa_gateway.schemas import Request as RequestBody
from fmcsa_status_view.query import MAX_LIMIT
from fmcsa_status_view.rows import SyncLogRow, SyncState
from fmcsa_status_view.syncstatus import SYNC_TYPES, js_time

SOURCES_BY_TYPE = {name: source for source, name in SYNC_TYPES.items()}
SEED_STATUS: dict[SyncState, str] = {
    SyncState.REQUESTED: "running",
    SyncState.SUCCEEDED: "completed",
    SyncState.FAILED: "failed",
}


class SeedLog(Answer):
    id: str
    organizationId: str  # the seed's field names are the contract
    syncType: str
    status: Literal["running", "completed", "failed"]
    recordsTotal: int
    recordsProcessed: int
    recordsInserted: int
    recordsUpdated: int
    recordsErrored: int
    startedAt: str | None
    completedAt: str | None
    durationMs: int | None
    errorMessage: str | None
    triggeredBy: str | None


class SeedSummary(Answer):
    totalSyncs: int
    successfulSyncs: int
    failedSyncs: int
    lastSync: str | None


class SeedSyncStatus(Answer):
    success: bool
    logs: list[SeedLog]
    summary: SeedSummary


class SeedWorker(Answer):
    enabled: bool
    running: bool
    nextRun: str | None


class SeedWorkerStatus(Answer):
    success: bool
    worker: SeedWorker


class SeedInterval(Answer):
    syncType: str
    intervalMinutes: int | None
    cron: str | None
    enabled: bool


class SeedIntervals(Answer):
    success: bool
    intervals: list[SeedInterval]


class SeedIntervalChange(RequestBody):
    intervalMinutes: int = Field(ge=5, le=1440, description="Minutes between syncs, 5 to 1440.")


def seed_log(row: SyncLogRow) -> SeedLog:
    """One sync-log row in the seed's names. A source stores a fetch whole or fails it, so every fetched
    record is processed (inserted, updated or unchanged) and none is counted errored.
    """
    fetched = row.fetched or 0
    return SeedLog(
        id=row.request_id,
        organizationId=row.dot,
        syncType=SYNC_TYPES[row.source],
        status=SEED_STATUS[row.status],
        recordsTotal=fetched,
        recordsProcessed=(row.inserted or 0) + (row.updated or 0) + (row.unchanged or 0),
        recordsInserted=row.inserted or 0,
        recordsUpdated=row.updated or 0,
        recordsErrored=0,
        startedAt=js_time(row.started_at or row.requested_at),
        completedAt=js_time(row.finished_at),
        durationMs=row.duration_ms,
        errorMessage=row.error_message,
        triggeredBy=row.requested_by,
    )


def sync_type_source(name: str) -> SourceKey:
    """The source of a seed sync type (or a native source key); a 404 problem for anything else."""
    source = SOURCES_BY_TYPE.get(name)
    if source is None and name in set(SourceKey):
        source = SourceKey(name)
    if source is None:
        known = ", ".join(SYNC_TYPES.values())
        raise ProblemError(404, f"no sync type {name!r}; one of {known}")
    return source


OrganizationId = Annotated[
    str | None,
    QueryParameter(
        name="organizationId",
        description="A DOT number: only its syncs.",
        schema_extra={"pattern": DOT_PATTERN},
    ),
]


class SeedController(Controller):
    path = "/api/sync"
    tags = ("seed aliases",)

    @get("/status", guards=[VIEWER], responses=problem_specs(401, 422))
    async def sync_status(
        self,
        ports: PortsDep,
        organization_id: OrganizationId = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Logs to return.")] = 50,
    ) -> SeedSyncStatus:
        """The seed worker's sync status: the newest `limit` syncs (of one organization, a DOT, when given)
        and totals. Alias of `GET /api/sync/log` and `GET /api/sync/summary`.
        """
        dot = edge_dot(organization_id, where="query.organizationId") if organization_id is not None else None
        page = await ports.view.sync_log(dot=dot, limit=limit)
        if dot is not None:
            counts = await ports.view.sync_counts(dot)
            summary = SeedSummary(
                totalSyncs=counts.total,
                successfulSyncs=counts.succeeded,
                failedSyncs=counts.failed,
                lastSync=js_time(counts.last_finished_at),
            )
        else:
            totals = await ports.view.summary(days=1)
            summary = SeedSummary(
                totalSyncs=totals.requests,
                successfulSyncs=totals.succeeded,
                failedSyncs=totals.failed,
                lastSync=js_time(totals.last_sync_at),
            )
        return SeedSyncStatus(success=True, logs=[seed_log(row) for row in page.items], summary=summary)

    @get("/worker-status", guards=[VIEWER], responses=problem_specs(401))
    async def worker_status(self, ports: PortsDep) -> SeedWorkerStatus:
        """The seed worker's status: enabled, running, and the next run of any source. Alias of
        `GET /api/scheduler/status`.
        """
        status = await scheduler_status(ports.state_kv, now=ports.clock())
        upcoming = [each.next_due_at for each in status.sources.values() if each.next_due_at is not None]
        next_run: datetime | None = min(upcoming) if upcoming else None
        worker = SeedWorker(enabled=bool(status.enabled), running=status.running, nextRun=js_time(next_run))
        return SeedWorkerStatus(success=True, worker=worker)

    @get("/intervals", guards=[VIEWER], responses=problem_specs(401))
    async def intervals(self, ports: PortsDep) -> SeedIntervals:
        """Each sync type's schedule: its interval in minutes (null for a cron schedule). Alias of
        `GET /api/schedules`.
        """
        items = [
            SeedInterval(
                syncType=SYNC_TYPES[each.source],
                intervalMinutes=each.interval_minutes,
                cron=each.cron,
                enabled=each.enabled,
            )
            for each in await current_schedules(ports.js)
        ]
        return SeedIntervals(success=True, intervals=items)

    @post(
        "/intervals/{sync_type:str}",
        guards=[ADMIN],
        status_code=HTTP_200_OK,
        responses=problem_specs(400, 401, 403, 404, 413, 422),
    )
    async def change_interval(
        self,
        ports: PortsDep,
        sync_type: Annotated[
            str, PathParameter(description="A sync type (csa_scores, violations, inspections, authority).")
        ],
        data: JSONBody[SeedIntervalChange],
        request: Request[Caller, Any, Any],
    ) -> SeedInterval:
        """Set a sync type's interval (5 to 1440 minutes; enabled). Alias of `PUT /api/schedules/{source}`."""
        source = sync_type_source(sync_type)
        schedule = await put_schedule(
            ports, source, PutSchedule(interval_minutes=data.intervalMinutes, enabled=True), request.user
        )
        return SeedInterval(
            syncType=SYNC_TYPES[schedule.source],
            intervalMinutes=schedule.interval_minutes,
            cron=schedule.cron,
            enabled=schedule.enabled,
        )
