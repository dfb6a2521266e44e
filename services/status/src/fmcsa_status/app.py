"""The status projector's composition root: `create_app(settings)` wires the projector into the worker
shell (`fmcsa_runtime.service.Shell`: the one NATS connection, health, readiness, metrics, signals);
importing builds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from prometheus_client import Gauge

from fmcsa_events.lag import stream_lag
from fmcsa_runtime.service import Shell
from fmcsa_status.handlers import SERVICE, Projector
from fmcsa_status.settings import Settings
from fmcsa_status.store import StatusStore

log = structlog.get_logger(__name__)

LAG_EVENTS = Gauge("fmcsa_status_lag_events", "Events in the stream after the position the projector applied")
LAG_SECONDS = Gauge(
    "fmcsa_status_lag_seconds", "Age of the oldest event the projector has not applied yet (0: caught up)"
)
LAG_EVERY_S = 1.0
"""How often the projector measures its lag (two JetStream API calls)."""


class StatusWorker:
    """The projector's part of one run (`fmcsa_runtime.service.Worker`): the store and the loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: StatusStore | None = None
        self.projector: Projector | None = None
        self._lag: asyncio.Task[None] | None = None

    async def start(self, nc: NatsClient) -> None:
        settings = self.settings
        self.store = await StatusStore.connect(settings.resolved_database_url())
        self.projector = Projector(
            nc.jetstream(),
            self.store,
            batch_size=settings.batch_size,
            batch_wait_s=settings.batch_wait_ms / 1000,
            retry_max_s=settings.retry_max_s,
        )
        self.projector.start()
        self._lag = asyncio.create_task(self._measure_lag(nc.jetstream()))

    async def _measure_lag(self, js: JetStreamContext) -> None:
        """Export the projector's lag every `LAG_EVERY_S`, from the position readers see (committed, not
        only folded); a failed measure keeps the last figures.
        """
        while True:
            if self.store is not None:
                try:
                    lag = await stream_lag(js, await self.store.committed_position())
                except Exception as error:  # the bus away: the shell's reconnect says so; keep going
                    log.debug("status_lag_unknown", error=type(error).__name__)
                else:
                    LAG_EVENTS.set(lag.events)
                    LAG_SECONDS.set(lag.oldest_s)
            await asyncio.sleep(LAG_EVERY_S)

    async def stop(self, grace_s: float) -> None:
        if self._lag is not None:
            self._lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag
        if self.projector is not None:
            await self.projector.stop(grace_s=grace_s)
        if self.store is not None:
            await self.store.close()

    async def ready(self) -> bool:
        """The projector runs and the store answers (`StatusStore.answers`)."""
        if self.projector is None or not self.projector.running or self.store is None:
            return False
        return await self.store.answers()


def create_app(settings: Settings) -> Shell:
    """Wire the projector: the shell connects NATS (topology declared); the worker opens the store."""
    return Shell(settings, name=SERVICE, worker=StatusWorker(settings))


def tune_garbage_collector() -> None:
    """Collect garbage less often, for the process (service or rebuild), never at import.

    The projector allocates a few dozen objects per event and keeps tens of thousands of rows in its
    cache; with the default thresholds the collector ran every 700 allocations and walked that cache
    again and again, about a third of the fold's CPU. Objects alive at start are frozen out of
    collection, and the youngest generation collects every 50,000 allocations.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
