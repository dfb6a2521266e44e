"""The one shape every bus service runs in: a FastStream NATS broker inside an ASGI app that serves
`/health` (alive), `/ready` (broker reachable and the service's own check) and `/metrics`
(Prometheus, FastStream's middleware counting bus traffic), run by uvicorn.

uvicorn turns SIGTERM and SIGINT into a graceful stop: intake stops, the broker waits up to
`grace_s` for running handlers (what is not finished is left unacked and redelivered), the
service's shutdown hooks run, and the process exits 0.

`serve` starts the app in the background (`StartInBackground`): the port opens and `/health` answers
at once, `/ready` says "starting" (503) until the app's own startup (connecting NATS, opening the store)
has finished, and a stop signal is honoured at any moment, connected or not. While NATS is unreachable
`connect_nats` retries with back-off (stamina), one log line per attempt and no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import nats
import nats.errors
import stamina
import structlog
import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.nats import NatsBroker
from faststream.nats.prometheus import NatsPrometheusMiddleware
from faststream.nats.security import NatsSecurity, NatsUserPassword
from nats.aio.client import Client as NatsClient
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from fmcsa_events.topology import Topology, declare
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


class NatsUnreachable(Exception):
    """No NATS server of the list answered one connect pass; its text names the last error only."""

    def __repr__(self) -> str:  # stamina's retry line shows this: keep it one short line
        return f"NatsUnreachable({self})"


class _ErrorLog:
    """nats-py's error callback: one log line per error and no traceback (its default logs one with a
    traceback for every failed reconnect, twice a second). While the first connection is being made
    errors are only remembered: the retry loop reports each failed attempt once.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected = False
        self.last: Exception | None = None

    async def callback(self, error: Exception) -> None:  # nats-py wants a coroutine function
        self.last = error
        if self.connected:
            log.warning("nats_error", connection=self.name, error=f"{type(error).__name__}: {error}")


CONNECT_WAIT_INITIAL_S = 0.5
CONNECT_WAIT_MAX_S = 10.0
"""Back-off between connect attempts while NATS is unreachable at start: 0.5 s doubling up to 10 s."""


DECLARE_ATTEMPTS = 6
DECLARE_TIMEOUT_S = 90.0


async def declare_bus(nc: NatsClient, topology: Topology) -> None:
    """`fmcsa_events.topology.declare`, retried while JetStream does not answer in time: on a cluster
    that is still electing the leaders of streams and buckets (a first start, a node restarting), an
    API request times out for a few seconds. stamina logs one line per retry; a refusal is not retried.
    """
    async for attempt in stamina.retry_context(
        on=nats.errors.TimeoutError, attempts=DECLARE_ATTEMPTS, timeout=DECLARE_TIMEOUT_S, wait_initial=0.5
    ):
        with attempt:
            await declare(nc.jetstream(), topology)


async def connect_nats(settings: ServiceSettings, *, name: str) -> NatsClient:
    """A nats-py connection for JetStream admin, publishing and KV; reconnects forever once connected.

    Until the first connection is made, each attempt is one pass over the servers (nats-py tries each
    twice); a failed pass is retried by stamina with exponential back-off and jitter, forever, and
    stamina logs one `stamina.retry_scheduled` line per failed attempt. Cancelling it (a stop signal)
    ends the wait at once.
    """
    errors = _ErrorLog(name)
    async for attempt in stamina.retry_context(
        on=NatsUnreachable,
        attempts=None,
        timeout=None,
        wait_initial=CONNECT_WAIT_INITIAL_S,
        wait_max=CONNECT_WAIT_MAX_S,
        wait_jitter=CONNECT_WAIT_INITIAL_S,
    ):
        with attempt:
            try:
                nc = await nats.connect(
                    servers=[url.strip() for url in settings.nats_url.split(",")],
                    name=name,
                    max_reconnect_attempts=1,  # one pass at start; forever once connected (below)
                    reconnect_time_wait=0.5,
                    connect_timeout=5,
                    allow_reconnect=True,
                    error_cb=errors.callback,
                    **settings.nats_options(),
                )
            except (OSError, TimeoutError, nats.errors.NoServersError) as error:
                cause = errors.last or error
                raise NatsUnreachable(f"{type(cause).__name__}: {cause}") from None
    # `options` is the client's live configuration: reconnects read it each time
    nc.options["max_reconnect_attempts"] = -1
    errors.connected = True
    return nc


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

    The app starts in the background (`StartInBackground`), so the port, `/health` and the stop signals
    work from the first moment. If the app's startup fails, the process stops and exits 1.

    uvicorn re-raises the signal it caught once it has shut down, so that the default handler kills
    the process (exit -15). A graceful stop is a success here: the re-raised signal meets a handler
    that ignores it.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_already)
    os.umask(0o077)  # whatever the service writes (SQLite stores, spools) is its user's only
    server: uvicorn.Server | None = None

    def stop_server() -> None:
        if server is not None:
            server.should_exit = True

    wrapped = StartInBackground(app, grace_s=grace_s, on_failure=stop_server)
    config = uvicorn.Config(
        wrapped,
        host=host,
        port=port,
        timeout_graceful_shutdown=int(grace_s),
        access_log=False,
        use_colors=False,
        log_config=None,  # keep the structlog handlers configure_logging installed
        lifespan="on",
        **options,
    )
    server = uvicorn.Server(config)
    asyncio.run(server.serve())
    if wrapped.failed:
        raise SystemExit(1)


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class StartInBackground:
    """An ASGI wrapper that answers the server's lifespan startup at once and runs the app's own
    lifespan startup in a task.

    Until that startup has finished, `/health` answers 200 (the process is alive) and every other
    request 503 `{"status":"starting"}` (so `/ready` says not ready). At shutdown a startup still under
    way is cancelled (waited for up to `grace_s`), else the app's own shutdown runs. A startup that
    fails is logged once and `on_failure` is called (the server stops; `failed` is set).
    """

    def __init__(self, app: Any, *, grace_s: float, on_failure: Callable[[], None]) -> None:
        self.app = app
        self.grace_s = grace_s
        self.on_failure = on_failure
        self.started = asyncio.Event()
        self.failed = False

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self.started.is_set():
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            alive = scope["path"] == "/health"
            body = json.dumps({"status": "ok" if alive else "starting"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200 if alive else 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # try again later

    async def _lifespan(self, scope: Message, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        to_app: asyncio.Queue[Message] = asyncio.Queue()
        from_app: asyncio.Queue[Message] = asyncio.Queue()
        await to_app.put({"type": "lifespan.startup"})
        app_task = asyncio.create_task(self.app(scope, to_app.get, from_app.put), name="app-lifespan")
        await send({"type": "lifespan.startup.complete"})
        watch = asyncio.create_task(self._watch_startup(app_task, from_app), name="app-startup")
        await receive()  # lifespan.shutdown
        if self.started.is_set():
            await to_app.put({"type": "lifespan.shutdown"})
            await _first_of(app_task, from_app)
        else:
            log.info("stopping_before_started")
            watch.cancel()
            app_task.cancel()
            await asyncio.wait({app_task}, timeout=self.grace_s)
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await send({"type": "lifespan.shutdown.complete"})

    async def _watch_startup(self, app_task: asyncio.Task[Any], from_app: asyncio.Queue[Message]) -> None:
        message = await _first_of(app_task, from_app)
        if message is not None and message["type"] == "lifespan.startup.complete":
            self.started.set()
            log.info("service_started")
            return
        self.failed = True
        error = app_task.exception() if app_task.done() and not app_task.cancelled() else None
        detail = (message or {}).get("message") or (f"{type(error).__name__}: {error}" if error else "")
        log.error("startup_failed", detail=str(detail)[-2000:])
        self.on_failure()


async def _first_of(app_task: asyncio.Task[Any], from_app: asyncio.Queue[Message]) -> Message | None:
    """The app's next lifespan message, or None if its lifespan task ended without one."""
    get = asyncio.create_task(from_app.get())
    await asyncio.wait({get, app_task}, return_when=asyncio.FIRST_COMPLETED)
    if get.done():
        return get.result()
    get.cancel()
    return None


def _stopped_already(signum: int, frame: object) -> None:
    log.info("stopped", signal=signal.Signals(signum).name)
