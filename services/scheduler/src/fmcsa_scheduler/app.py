"""The composition root: `create_app(settings)` wires the scheduler into the worker shell
(`fmcsa_runtime.service.Shell`: the one NATS connection, health, readiness, metrics, signals). Importing
this module builds nothing.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from nats.aio.client import Client as NatsClient

from fmcsa_events.topology import INFLIGHT_BUCKET, STATE_BUCKET
from fmcsa_runtime.service import Shell
from fmcsa_scheduler.handlers import Scheduler
from fmcsa_scheduler.settings import Clock, Settings

log = structlog.get_logger(__name__)


class SchedulerWorker:
    """The scheduler's part of one run (`fmcsa_runtime.service.Worker`): its loops over the shell's
    connection, the in-flight markers and the state bucket.
    """

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.scheduler = Scheduler(settings, clock=clock)

    async def start(self, nc: NatsClient) -> None:
        js = nc.jetstream()
        await self.scheduler.start(nc, await js.key_value(INFLIGHT_BUCKET), await js.key_value(STATE_BUCKET))
        for task in self.scheduler.tasks:
            task.add_done_callback(_stop_process_if_crashed)

    async def stop(self, grace_s: float) -> None:
        await self.scheduler.stop()  # waits up to the settings' grace_s for a running tick

    async def ready(self) -> bool:
        return await self.scheduler.is_ready()


def create_app(settings: Settings, *, clock: Clock | None = None) -> Shell:
    """Wire one scheduler replica. Tests may pass the `clock` they control (else `settings.clock()`)."""
    worker = SchedulerWorker(settings, clock or settings.clock())
    return Shell(settings, name=f"scheduler-{settings.replica_id}", worker=worker)


def _stop_process_if_crashed(task: asyncio.Task[None]) -> None:
    # A loop that died of a bug would leave a process that looks alive and schedules nothing. Stop it
    # instead, so it is restarted; the checkpoint makes the restart catch up without duplicates.
    if task.cancelled() or task.exception() is None:
        return
    log.error("scheduler_loop_crashed", task=task.get_name(), exc_info=task.exception())
    signal.raise_signal(signal.SIGTERM)
