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
from prometheus_client import Counter, Gauge

from fmcsa_events.lag import stream_lag
from fmcsa_runtime.service import Shell
from fmcsa_status.handlers import SERVICE, Projector
from fmcsa_status.publisher import RiskPublisher
from fmcsa_status.settings import Settings
from fmcsa_status.snapshot import take_snapshot
from fmcsa_status.store import StatusStore

log = structlog.get_logger(__name__)

LAG_EVENTS = Gauge("fmcsa_status_lag_events", "Events in the stream after the position the projector applied")
LAG_SECONDS = Gauge(
    "fmcsa_status_lag_seconds", "Age of the oldest event the projector has not applied yet (0: caught up)"
)
LAG_EVERY_S = 1.0
"""How often the projector measures its lag (two JetStream API calls)."""
SNAPSHOT_POSITION = Gauge(
    "fmcsa_status_snapshot_position", "Stream position of the newest snapshot this projector saved"
)
SNAPSHOT_FAILURES = Counter("fmcsa_status_snapshot_failures_total", "Scheduled snapshots that failed")


class StatusWorker:
    """The projector's part of one run (`fmcsa_runtime.service.Worker`): the store and the loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: StatusStore | None = None
        self.projector: Projector | None = None
        self.publisher: RiskPublisher | None = None
        self._lag: asyncio.Task[None] | None = None
        self._snapshots: asyncio.Task[None] | None = None
        self.snapshot_position = 0  # of the last snapshot this worker saved

    async def start(self, nc: NatsClient) -> None:
        settings = self.settings
        # the live store writes risk changes into its outbox; the publisher sends them
        self.store = await StatusStore.connect(settings.resolved_database_url(), risk_outbox=True)
        self.projector = Projector(
            nc.jetstream(),
            self.store,
            batch_size=settings.batch_size,
            batch_wait_s=settings.batch_wait_ms / 1000,
            retry_max_s=settings.retry_max_s,
        )
        self.projector.start()
        self.publisher = RiskPublisher(nc.jetstream(), self.store, producer=SERVICE)
        self.publisher.start()
        self._lag = asyncio.create_task(self._measure_lag(nc.jetstream()))
        if settings.snapshot_interval_s > 0:
            self._snapshots = asyncio.create_task(self._snapshot_on_schedule(nc.jetstream()))

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

    async def _snapshot_on_schedule(self, js: JetStreamContext) -> None:
        """Every `snapshot_interval_s`, a snapshot of the store into the bus (`fmcsa_status.snapshot`)
        when its committed position moved since the last one; a failure is logged and counted, and
        the next interval tries again. The first comes one interval after start.
        """
        settings = self.settings
        while True:
            await asyncio.sleep(settings.snapshot_interval_s)
            if self.store is None:
                continue
            try:
                if await self.store.committed_position() == self.snapshot_position:
                    continue
                saved = await take_snapshot(
                    js, self.store.url, workdir=settings.data_dir, keep=settings.snapshot_keep
                )
            except Exception as error:  # the bus or the store away: the next interval tries again
                SNAPSHOT_FAILURES.inc()
                log.warning("status_snapshot_failed", error=repr(error))
                continue
            self.snapshot_position = saved.position
            SNAPSHOT_POSITION.set(saved.position)

    async def stop(self, grace_s: float) -> None:
        for task in (self._snapshots, self._lag):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.projector is not None:
            await self.projector.stop(grace_s=grace_s)
        if self.publisher is not None:  # after the projector: its last commit's rows wait for the next run
            await self.publisher.stop()
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
