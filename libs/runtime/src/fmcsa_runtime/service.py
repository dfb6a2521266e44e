"""The one shape every service runs in, `Shell`: the process's one NATS connection, `/health` (alive),
`/ready` (the connection is connected and the service's own check says yes) and `/metrics` (the
process's Prometheus registry), the service's tasks (`Worker`), and for the gateway its HTTP app behind
the shell, run by uvicorn (`run`, `serve`).

uvicorn turns SIGTERM and SIGINT into a graceful stop: the worker stops its intake and waits up to
`grace_s` for the work in hand (what is not finished is handed back or left unacked, and redelivered),
closes its store, the connection is drained, and the process exits 0.

`serve` starts the app in the background (`StartInBackground`): the port opens and `/health` answers
at once, `/ready` says "starting" (503) until the startup (connecting NATS, opening the store) has
finished, and a stop signal is honoured at any moment, connected or not. While NATS is unreachable
`connect_nats` retries with back-off (stamina), one log line per attempt and no traceback; a connection
that is lost later is retried forever by nats-py with the same back-off, one line per attempt
(`_ConnectionLog`), and the process stays up meanwhile (`/ready` says 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

import nats
import nats.errors
import stamina
import structlog
import uvicorn
from nats.aio.client import Client as NatsClient
from nats.aio.client import Server
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from fmcsa_events.topology import Topology, declare
from fmcsa_runtime.settings import ServiceSettings

log = structlog.get_logger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class NatsUnreachable(Exception):
    """No NATS server of the list answered one connect pass; its text names the last error only."""

    def __repr__(self) -> str:  # stamina's retry line shows this: keep it one short line
        return f"NatsUnreachable({self})"


CONNECT_WAIT_INITIAL_S = 0.5
CONNECT_WAIT_MAX_S = 10.0
"""Back-off between connect attempts while NATS is unreachable, at start and after a connection was lost:
0.5 s doubling up to 10 s, with jitter."""


class _ConnectionLog:
    """nats-py's callbacks for one connection: one log line per event and no traceback (its default
    logs one with a traceback for every failed reconnect, twice a second).

    - While the first connection is being made errors are only remembered: the retry loop of
      `connect_nats` reports each failed attempt once.
    - Once connected, an error is logged (`nats_error`): a lost connection, a permission refused.
    - While reconnecting, the reconnect handler logs one `nats_reconnecting` line per attempt, with its
      back-off (`CONNECT_WAIT_INITIAL_S` doubling up to `CONNECT_WAIT_MAX_S`, jittered) and the error of
      the attempt before; `nats_reconnected` ends the series and resets the back-off.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected = False
        self.reconnecting = False
        self.attempts = 0
        self.last: Exception | None = None

    def _error_text(self) -> str | None:
        return f"{type(self.last).__name__}: {self.last}" if self.last is not None else None

    async def error(self, error: Exception) -> None:  # nats-py wants coroutine functions
        self.last = error
        if self.connected and not self.reconnecting:
            log.warning("nats_error", connection=self.name, error=self._error_text())

    async def disconnected(self) -> None:
        if self.connected:
            self.reconnecting = True

    async def reconnected(self) -> None:
        log.info("nats_reconnected", connection=self.name, attempts=self.attempts)
        self.reconnecting = False
        self.attempts = 0
        self.last = None

    async def closed(self) -> None:
        if self.connected:
            log.info("nats_closed", connection=self.name)

    def next_server(self, servers: list[Server], info: dict[str, Any]) -> tuple[Server | None, float]:
        """nats-py's `reconnect_to_server_handler`: the server tried least since the connection was
        lost, and how long to wait before trying it.
        """
        self.reconnecting = True
        delay = 0.0
        if self.attempts:
            delay = min(CONNECT_WAIT_INITIAL_S * 2 ** (self.attempts - 1), CONNECT_WAIT_MAX_S)
            delay += random.uniform(0, CONNECT_WAIT_INITIAL_S)
        self.attempts += 1
        server = min(servers, key=lambda s: s.reconnects) if servers else None
        log.warning(
            "nats_reconnecting",
            connection=self.name,
            attempt=self.attempts,
            server=server.uri.netloc if server is not None else None,
            wait_s=round(delay, 2),
            error=self._error_text(),
        )
        return server, delay


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
    """The process's one nats-py connection (JetStream, KV, subscriptions); reconnects forever once
    connected, one `nats_reconnecting` log line per attempt with back-off (`_ConnectionLog`).

    Until the first connection is made, each attempt is one pass over the servers (nats-py tries each
    twice); a failed pass is retried by stamina with exponential back-off and jitter, forever, and
    stamina logs one `stamina.retry_scheduled` line per failed attempt. Cancelling it (a stop signal)
    ends the wait at once.
    """
    events = _ConnectionLog(name)
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
                    reconnect_time_wait=CONNECT_WAIT_INITIAL_S,
                    connect_timeout=5,
                    allow_reconnect=True,
                    error_cb=events.error,
                    disconnected_cb=events.disconnected,
                    reconnected_cb=events.reconnected,
                    closed_cb=events.closed,
                    reconnect_to_server_handler=events.next_server,
                    **settings.nats_options(),
                )
            except (OSError, TimeoutError, nats.errors.NoServersError) as error:
                cause = events.last or error
                raise NatsUnreachable(f"{type(cause).__name__}: {cause}") from None
    # `options` is the client's live configuration: reconnects read it each time
    nc.options["max_reconnect_attempts"] = -1
    events.connected = True
    events.last = None
    return nc


RELEASE_DRAIN_S = 5.0
"""Longest a stop drains the connection before it closes it instead: a stop that used its grace period
must still end the process promptly (a supervisor's SIGKILL follows soon after)."""


async def release(nc: NatsClient) -> None:
    """Drain the connection at a stop, or close it when it cannot be drained (NATS is away and it is
    reconnecting: closing ends the reconnect loop). Never raises: the process is stopping.
    """
    if nc.is_closed:
        return
    try:
        async with asyncio.timeout(RELEASE_DRAIN_S):  # nats-py's own drain timeout is 30 s
            await nc.drain()
    except (nats.errors.Error, OSError, TimeoutError):
        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            await nc.close()  # the socket may be half open


class Worker(Protocol):
    """What a service gives the shell: its own part of one run, over the shell's NATS connection."""

    async def start(self, nc: NatsClient) -> None:
        """Open the store, declare what the service declares beyond the topology, start the service's
        tasks, and return once they run. An exception fails the startup (the process exits 1).
        """
        ...

    async def stop(self, grace_s: float) -> None:
        """Stop intake, let work in hand finish within `grace_s`, close the store. Also called after a
        `start` that failed or was cancelled half way: close whatever was opened.
        """
        ...

    async def ready(self) -> bool:
        """The service's own readiness: its loop runs, and its store answers (`fmcsa_runtime.database
        .answers`) where it has one of its own beside the bus.
        """
        ...


class Shell:
    """The one shape every service runs in (scheduler, status, notifier, each source, the gateway): an
    ASGI app that owns the process's one NATS connection and serves `/health`, `/ready` and `/metrics`.

    Startup (the ASGI lifespan, run in the background by `serve`): `connect_nats` (retried with back-off
    while NATS is unreachable), `declare_bus`, then `worker.start(nc)`, then the lifespan of `app` if one
    is given. Shutdown: `app`'s lifespan shutdown, `worker.stop(grace_s)` cut at the grace, then the
    connection is drained. `/ready` is 200 while the connection is connected and `worker.ready()` says
    yes; its body names both checks (`{"status": "ready", "nats": true, <check>: true}`). `/metrics` is
    the process's Prometheus registry (the service's own families). `async with shell:` runs the same
    startup and shutdown without a server (tests).

    `app` (an ASGI app, the gateway's Litestar app) answers every request the shell does not: every
    path but its three, and websockets. `headers` are added to the shell's own answers (the gateway's
    security headers, which its app adds to its own).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        name: str,
        worker: Worker,
        app: Any = None,  # any ASGI app (Litestar types its own callables)
        check: str = "worker",
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.settings = settings
        self.name = name
        self.worker = worker
        self.app = app
        self.check = check
        self.headers = list(headers)
        self.nc: NatsClient | None = None
        self._app_lifespan: _Lifespan | None = None

    async def start(self, scope: Message | None = None) -> None:
        self.nc = await connect_nats(self.settings, name=self.name)
        await declare_bus(self.nc, self.settings.topology())
        await self.worker.start(self.nc)
        if self.app is not None:
            self._app_lifespan = _Lifespan(self.app)
            await self._app_lifespan.startup(scope or _LIFESPAN_SCOPE)

    async def stop(self) -> None:
        """The app's shutdown, then the worker's stop, cut at `grace_s` (a bus call waiting out its
        timeout while NATS is away must not hold the process), then the connection is drained, or closed
        if it cannot be.
        """
        grace_s = self.settings.grace_s
        try:
            async with asyncio.timeout(grace_s):
                if self._app_lifespan is not None:
                    lifespan, self._app_lifespan = self._app_lifespan, None
                    await lifespan.shutdown()
                await self.worker.stop(grace_s)
        except TimeoutError:
            log.warning("stop_cut_at_grace", grace_s=grace_s)
        finally:
            if self.nc is not None:
                await release(self.nc)

    async def checks(self) -> dict[str, bool]:
        """`nats`: the connection is connected; `check`: the worker's own readiness."""
        connected = self.nc is not None and self.nc.is_connected
        return {"nats": connected, self.check: self.nc is not None and await self.worker.ready()}

    async def ready(self) -> bool:
        return all((await self.checks()).values())

    async def __aenter__(self) -> Shell:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in ("/health", "/ready", "/metrics"):
            await self._http(scope, send)
        elif self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await self._answer(send, 404, b'{"status":"not found"}')

    async def _lifespan(self, scope: Message, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            await self.start(scope)
        except Exception as error:
            await self.stop()
            await send({"type": "lifespan.startup.failed", "message": f"{type(error).__name__}: {error}"})
            return
        except asyncio.CancelledError:  # a stop signal before the startup finished
            await self.stop()
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self.stop()
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Message, send: Send) -> None:
        path = scope["path"]
        if path == "/health":
            await self._answer(send, 200, b'{"status":"ok"}')
        elif path == "/ready":
            checks = await self.checks()
            ok = all(checks.values())
            body = json.dumps({"status": "ready" if ok else "not ready", **checks}).encode()
            await self._answer(send, 200 if ok else 503, body)
        else:
            await self._answer(send, 200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST.encode())

    async def _answer(self, send: Send, status: int, body: bytes, kind: bytes = b"application/json") -> None:
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *self.headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_LIFESPAN_SCOPE: Message = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}


class _Lifespan:
    """The ASGI lifespan of an app the shell serves, driven by the shell: its startup once the worker
    runs, its shutdown before the worker stops. An app that does not speak lifespan is served without.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[Any] | None = None

    async def startup(self, scope: Message) -> None:
        await self._to_app.put({"type": "lifespan.startup"})
        self._task = asyncio.create_task(self.app(dict(scope), self._to_app.get, self._from_app.put))
        message = await _first_of(self._task, self._from_app)
        if message is None:  # the app's lifespan ended without a word: it has none
            self._task = None
        elif message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app's startup failed: {message.get('message', '')}")

    async def shutdown(self) -> None:
        if self._task is not None:
            await self._to_app.put({"type": "lifespan.shutdown"})
            await _first_of(self._task, self._from_app)


def run(shell: Shell) -> None:
    """Serve the shell until SIGTERM or SIGINT; returns after a graceful stop."""
    settings = shell.settings
    serve(shell, host=settings.http_host, port=settings.http_port, grace_s=settings.grace_s)


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
