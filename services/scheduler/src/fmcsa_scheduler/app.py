"""The composition root: `create_app(settings)` wires the scheduler into the service shape. Importing
this module builds nothing.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from faststream.asgi import AsgiFastStream
from nats.aio.client import Client as NatsClient
from prometheus_client import CollectorRegistry

from fmcsa_events.topology import INFLIGHT_BUCKET, STATE_BUCKET
from fmcsa_runtime.service import build_app, connect_nats, declare_bus, make_broker
from fmcsa_scheduler.handlers import Scheduler
from fmcsa_scheduler.settings import Clock, Settings

log = structlog.get_logger(__name__)


def create_app(settings: Settings, *, clock: Clock | None = None) -> AsgiFastStream:
    """Wire one scheduler replica. Tests may pass the `clock` they control (else `settings.clock()`)."""
    metrics = CollectorRegistry()
    broker = make_broker(settings, service="scheduler", registry=metrics)
    scheduler = Scheduler(settings, clock=clock or settings.clock())
    connection: list[NatsClient] = []

    async def start() -> None:
        nc = await connect_nats(settings, name=f"scheduler-{settings.replica_id}")
        connection.append(nc)
        js = nc.jetstream()
        await declare_bus(nc, settings.topology())
        await scheduler.start(nc, await js.key_value(INFLIGHT_BUCKET), await js.key_value(STATE_BUCKET))
        for task in scheduler.tasks:
            task.add_done_callback(_stop_process_if_crashed)

    async def stop() -> None:
        await scheduler.stop()
        for nc in connection:
            await nc.drain()

    return build_app(
        broker, registry=metrics, ready=scheduler.is_ready, after_startup=[start], on_shutdown=[stop]
    )


def _stop_process_if_crashed(task: asyncio.Task[None]) -> None:
    # A loop that died of a bug would leave a process that looks alive and schedules nothing. Stop it
    # instead, so it is restarted; the checkpoint makes the restart catch up without duplicates.
    if task.cancelled() or task.exception() is None:
        return
    log.error("scheduler_loop_crashed", task=task.get_name(), exc_info=task.exception())
    signal.raise_signal(signal.SIGTERM)
