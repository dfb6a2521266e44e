"""The status projector's composition root: `create_app(settings)` wires everything; importing builds
nothing. The projector loop runs as a task beside FastStream's health, readiness and metrics app.
"""

from __future__ import annotations

import gc

from faststream.asgi import AsgiFastStream
from nats.aio.client import Client as NatsClient
from prometheus_client import CollectorRegistry

from fmcsa_runtime.service import build_app, connect_nats, declare_bus, make_broker
from fmcsa_status.handlers import SERVICE, Projector
from fmcsa_status.settings import Settings
from fmcsa_status.store import StatusStore


class _Runtime:
    """What lives for one run of the service: the NATS connection, the store, the projector."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nc: NatsClient | None = None
        self.store: StatusStore | None = None
        self.projector: Projector | None = None

    async def open(self) -> None:
        settings = self.settings
        self.nc = await connect_nats(settings, name=SERVICE)
        js = self.nc.jetstream()
        await declare_bus(self.nc, settings.topology())
        self.store = await StatusStore.connect(settings.resolved_database_url())
        self.projector = Projector(
            js,
            self.store,
            batch_size=settings.batch_size,
            batch_wait_s=settings.batch_wait_ms / 1000,
            retry_max_s=settings.retry_max_s,
        )

    async def start(self) -> None:
        assert self.projector is not None, "open() runs first"
        self.projector.start()

    async def stop(self) -> None:
        if self.projector is not None:
            await self.projector.stop(grace_s=self.settings.grace_s)

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.drain()

    async def ready(self) -> bool:
        return self.projector is not None and self.projector.running


def create_app(settings: Settings) -> AsgiFastStream:
    """Wire the projector: NATS (topology declared), the store, the loop, health and metrics."""
    registry = CollectorRegistry()
    broker = make_broker(settings, service=SERVICE, registry=registry)
    runtime = _Runtime(settings)
    return build_app(
        broker,
        registry=registry,
        ready=runtime.ready,
        on_startup=[runtime.open],
        after_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        after_shutdown=[runtime.close],
    )


def tune_garbage_collector() -> None:
    """Collect garbage less often, for the process (service or rebuild), never at import.

    The projector allocates a few dozen objects per event and keeps tens of thousands of rows in its
    cache; with the default thresholds the collector ran every 700 allocations and walked that cache
    again and again, about a third of the fold's CPU. Objects alive at start are frozen out of
    collection, and the youngest generation collects every 50,000 allocations.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
