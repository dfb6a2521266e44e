"""The one shape every bus service runs in: a FastStream NATS broker inside an ASGI app that serves
`/health` (alive), `/ready` (broker reachable and the service's own check) and `/metrics`
(Prometheus, FastStream's middleware counting bus traffic), run by uvicorn.

uvicorn turns SIGTERM and SIGINT into a graceful stop: intake stops, the broker waits up to
`grace_s` for running handlers (what is not finished is left unacked and redelivered), the
service's shutdown hooks run, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
import structlog
import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.nats import NatsBroker
from faststream.nats.prometheus import NatsPrometheusMiddleware
from faststream.nats.security import NatsSecurity, NatsUserPassword
from nats.aio.client import Client as NatsClient
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from fmcsa_runtime.settings import ServiceSettings

log = structlog.get_logger(__name__)

ReadyCheck = Callable[[], Awaitable[bool]]


def make_broker(settings: ServiceSettings, *, service: str, registry: CollectorRegistry) -> NatsBroker:
    """A FastStream NATS broker with Prometheus middleware and the service's grace period."""
    return NatsBroker(
        [url.strip() for url in settings.nats_url.split(",")],
        graceful_timeout=settings.grace_s,
        middlewares=[NatsPrometheusMiddleware(registry=registry, app_name=service)],
        max_reconnect_attempts=-1,
        name=service,
        # a plain stdlib logger: it propagates to the root handler that configure_logging installed
        logger=logging.getLogger(f"faststream.{service}"),
        security=_security(settings),
    )


def _security(settings: ServiceSettings) -> NatsSecurity | None:
    """The broker's form of `settings.nats_options()`: user and password, and TLS, or nothing."""
    options = settings.nats_options()
    if "user" in options:
        return NatsUserPassword(options["user"], options.get("password", ""), ssl_context=options.get("tls"))
    if "tls" in options:
        return NatsSecurity(ssl_context=options["tls"])
    return None


async def connect_nats(settings: ServiceSettings, *, name: str) -> NatsClient:
    """A nats-py connection for JetStream admin, publishing and KV; reconnects forever."""
    return await nats.connect(
        servers=[url.strip() for url in settings.nats_url.split(",")],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        allow_reconnect=True,
        **settings.nats_options(),
    )


def build_app(
    broker: NatsBroker,
    *,
    registry: CollectorRegistry,
    ready: ReadyCheck | None = None,
    on_startup: Sequence[Callable[..., Any]] = (),
    after_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
    after_shutdown: Sequence[Callable[..., Any]] = (),
) -> AsgiFastStream:
    """Wrap a broker in the ASGI app with health, readiness and metrics routes."""

    @get(include_in_schema=False)
    async def health(scope: Any) -> AsgiResponse:
        return AsgiResponse(b'{"status":"ok"}', 200, headers={"content-type": "application/json"})

    @get(include_in_schema=False)
    async def readiness(scope: Any) -> AsgiResponse:
        broker_ok = await broker.ping(2.0)
        own_ok = await ready() if ready is not None else True
        status = 200 if broker_ok and own_ok else 503
        body = b'{"status":"ready"}' if status == 200 else b'{"status":"not ready"}'
        return AsgiResponse(body, status, headers={"content-type": "application/json"})

    @get(include_in_schema=False)
    async def metrics(scope: Any) -> AsgiResponse:
        # the app's own registry (FastStream's bus metrics) plus the process-wide one (our counters)
        body = generate_latest(registry) + generate_latest(REGISTRY)
        return AsgiResponse(body, 200, headers={"content-type": CONTENT_TYPE_LATEST})

    return AsgiFastStream(
        broker,
        asgi_routes=[("/health", health), ("/ready", readiness), ("/metrics", metrics)],
        on_startup=list(on_startup),
        after_startup=list(after_startup),
        on_shutdown=list(on_shutdown),
        after_shutdown=list(after_shutdown),
        logger=logging.getLogger("faststream.app"),
    )


def run(app: AsgiFastStream, settings: ServiceSettings) -> None:
    """Serve the app until SIGTERM or SIGINT; returns after a graceful stop."""
    serve(app, host=settings.http_host, port=settings.http_port, grace_s=settings.grace_s)


def serve(app: Any, *, host: str, port: int, grace_s: float, **options: Any) -> None:
    """Run an ASGI app under uvicorn until SIGTERM or SIGINT, stop gracefully, and return (exit 0).
    `options` go to `uvicorn.Config` as they are (the gateway's timeouts and limits).

    uvicorn re-raises the signal it caught once it has shut down, so that the default handler kills
    the process (exit -15). A graceful stop is a success here: the re-raised signal meets a handler
    that ignores it.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_already)
    os.umask(0o077)  # whatever the service writes (SQLite stores, spools) is its user's only
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=int(grace_s),
        access_log=False,
        log_config=None,  # keep the structlog handlers configure_logging installed
        lifespan="on",
        **options,
    )
    asyncio.run(uvicorn.Server(config).serve())


def _stopped_already(signum: int, frame: object) -> None:
    log.info("stopped", signal=signal.Signals(signum).name)
