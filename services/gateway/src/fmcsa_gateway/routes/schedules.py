"""Schedules of the sources and the scheduler's status.

`GET /api/schedules` and `GET /api/scheduler/status` need a viewer; `PUT /api/schedules/{source}` an admin.
A refused schedule answers 422 with the reason and publishes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, put
from litestar.params import JSONBody, PathParameter

from fmcsa_events.identifiers import SourceKey
from fmcsa_gateway.auth import ADMIN, VIEWER, Caller
from fmcsa_gateway.bus_state import current_schedule, current_schedules, scheduler_status
from fmcsa_gateway.domain import ScheduleRefused, check_schedule
from fmcsa_gateway.ports import Ports, PortsDep
from fmcsa_gateway.problems import FieldError, ProblemError, problem_specs
from fmcsa_gateway.schemas import PutSchedule, Schedule, SchedulerStatus, Schedules

SourceParam = Annotated[SourceKey, PathParameter(description="A source key: " + ", ".join(SourceKey))]


async def put_schedule(ports: Ports, source: SourceKey, data: PutSchedule, caller: Caller) -> Schedule:
    """Check and publish a schedule; raises a 422 problem with the reason when it is refused."""
    checked = check_schedule(
        interval_minutes=data.interval_minutes,
        cron=data.cron,
        enabled=data.enabled,
        now_s=ports.clock().timestamp(),
    )
    if isinstance(checked, ScheduleRefused):
        raise ProblemError(
            422, checked.reason, errors=[FieldError(field=f"body.{checked.field}", reason=checked.reason)]
        )
    try:
        await ports.commands.change_schedule(source, checked, by=caller.subject)
    finally:  # even a publish that failed may have reached the stream
        ports.schedules.invalidate()
    return await current_schedule(ports.js, source)


class SchedulesController(Controller):
    path = "/api"
    tags = ("schedules",)

    @get("/schedules", guards=[VIEWER], responses=problem_specs(401))
    async def list_schedules(self, ports: PortsDep) -> Schedules:
        """Each source's schedule in force: its last ScheduleChanged, or the scheduler's default (every 360
        minutes; authority every 1440).
        """
        return Schedules(items=await current_schedules(ports.js))

    @put("/schedules/{source:str}", guards=[ADMIN], responses=problem_specs(400, 401, 403, 413, 422))
    async def change_schedule(
        self,
        ports: PortsDep,
        source: SourceParam,
        data: JSONBody[PutSchedule],
        request: Request[Caller, Any, Any],
    ) -> Schedule:
        """Set a source's schedule: `interval_minutes` 5..1440 or a `cron` expression (UTC), and `enabled`.

        Publishes ScheduleChanged; the scheduler applies it without a restart. 422 with the reason otherwise.
        """
        return await put_schedule(ports, source, data, request.user)

    @get("/scheduler/status", guards=[VIEWER], responses=problem_specs(401))
    async def get_scheduler_status(self, ports: PortsDep) -> SchedulerStatus:
        """The scheduler's heartbeat: enabled, running, next run per source, due, in flight, last tick."""
        return await scheduler_status(ports.state_kv, now=ports.clock())
