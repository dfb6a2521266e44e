"""Fixtures of the gateway's integration tests: the gateway in-process (its worker shell under Litestar's
AsyncTestClient, which runs the shell's startup and shutdown) on a real nats-server of the test's own,
reading a real status store that the real projector (`python -m fmcsa_status`, a child process) writes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from nats.js.errors import NotFoundError

from fmcsa_embedded import Child, free_port
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.models import Event
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_gateway.app import create_app
from fmcsa_gateway.serving import uvicorn_options
from fmcsa_gateway.settings import Settings
from fmcsa_runtime.tokens import Role, mint

SECRET = "gateway-integration-tests-secret-0123456789"
WEBHOOK_KEY = base64.urlsafe_b64encode(b"gateway-tests-webhook-key-32byte").decode()  # a Fernet key


def _bearer(role: Role, subject: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(SECRET, role=role, subject=subject or f"{role}-user")}


@pytest.fixture
def bearer() -> Callable[..., dict[str, str]]:
    """`bearer(Role.ADMIN, "who")`: the Authorization header of a valid token."""
    return _bearer


@pytest.fixture
def jwt_secret() -> str:
    return SECRET


@dataclass
class Gateway:
    app: Litestar  # the Litestar app behind the shell (`shell.app`): its routes and `state.ports`
    client: AsyncTestClient[Any]
    nats_url: str

    async def events(self, subject_prefix: str = "fmcsa.evt.") -> list[tuple[str, Event, dict[str, str]]]:
        """Every event in the stream whose subject starts with `subject_prefix`, in stream order."""
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(EVENTS_STREAM)
            except NotFoundError:
                return []
            found: list[tuple[str, Event, dict[str, str]]] = []
            for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(EVENTS_STREAM, seq)
                except NotFoundError:
                    continue
                if not msg.subject.startswith(subject_prefix):
                    continue
                decoded = decode(msg.headers, msg.data or b"")
                assert isinstance(decoded, Decoded), decoded
                found.append((msg.subject, decoded.event, dict(msg.headers or {})))
            return found
        finally:
            await nc.close()

    async def publish_folded(self, events: list[Event], *, headers: dict[str, str], wait_until: Any) -> int:
        """Publish `events` in order (as the services would) and wait until the status view has folded
        them; returns the last stream sequence."""
        nc = await nats.connect(self.nats_url)
        try:
            bus = Bus(nc.jetstream(), producer="test")
            last = 0
            for event in events:
                last = (await bus.publish(event)).seq
        finally:
            await nc.close()

        async def folded() -> bool:
            summary = await self.client.get("/api/sync/summary", headers=headers)
            return bool(summary.json()["applied_position"] >= last)

        await wait_until(folded, what=f"the view at position {last}", within_s=30)
        return last


def settings_for(nats_url: str, database_url: str, data_dir: Path, **changes: Any) -> Settings:
    return Settings(
        nats_url=nats_url,
        data_dir=data_dir,
        status_database_url=database_url,
        jwt_secret=SECRET,
        request_deadline_s=120,
        sse_keepalive_s=0.5,
        # the view's wait bounds how stale an announcement may be; on a loaded CI box the projector may
        # lag longer than the 5 s default, and the tests assert the order (view first), not that bound
        sse_view_wait_s=30,
        webhook_secret_key=WEBHOOK_KEY,  # alert rules seal their secrets with it
        webhook_allow_hosts="127.0.0.1",
        **changes,
    )


@pytest.fixture
def projector(fresh_nats_url: str, database_url: str, tmp_path: Path) -> Iterator[Child]:
    """The real status projector, folding the test's stream into the test's store."""
    env = {
        "FMCSA_NATS_URL": fresh_nats_url,
        "FMCSA_DATA_DIR": str(tmp_path),
        "FMCSA_STATUS_DATABASE_URL": database_url,
        "FMCSA_STATUS_HTTP_PORT": str(free_port()),
        "FMCSA_STATUS_BATCH_WAIT_MS": "5",
        "FMCSA_LOG_JSON": "true",
        "PYTHONUNBUFFERED": "1",
    }
    child = Child(
        "status",
        [sys.executable, "-m", "fmcsa_status"],
        {**os.environ, **env},
        log_path=tmp_path / "status.log",
    )
    child.start()
    try:
        yield child
    finally:
        child.stop(grace_s=10)


@pytest.fixture
async def gateway(
    fresh_nats_url: str, database_url: str, tmp_path: Path, projector: Child
) -> AsyncIterator[Gateway]:
    """The gateway on the test's nats-server, reading the store the projector writes."""
    shell = create_app(settings_for(fresh_nats_url, database_url, tmp_path))
    async with AsyncTestClient(shell, timeout=60) as client:
        yield Gateway(shell.app, client, fresh_nats_url)


@pytest.fixture
async def lone_gateway(fresh_nats_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """The gateway with no projector: its status store is an empty SQLite file (reads answer empty)."""
    database = f"sqlite:///{tmp_path / 'status.sqlite3'}"
    shell = create_app(settings_for(fresh_nats_url, database, tmp_path, read_your_writes_s=0))
    async with AsyncTestClient(shell, timeout=60) as client:
        yield Gateway(shell.app, client, fresh_nats_url)


@dataclass
class Served:
    """The gateway served by uvicorn on a loopback port (for streams and the browser)."""

    url: str
    nats_url: str


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[str]:
    """Run the gateway under uvicorn in this event loop until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings.model_copy(update={"http_port": port})),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        **uvicorn_options(settings),  # the gateway's timeouts and limits, as __main__ serves it
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)  # poll interval while uvicorn binds
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served_gateway(
    fresh_nats_url: str, database_url: str, tmp_path: Path, projector: Child
) -> AsyncIterator[Served]:
    async with serve(settings_for(fresh_nats_url, database_url, tmp_path)) as url:
        yield Served(url, fresh_nats_url)


@pytest.fixture
def gateway_with(
    fresh_nats_url: str, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]:
    """`async with gateway_with(**settings) as gw`: a gateway without a projector (an empty SQLite view)
    whose settings differ from the others' as given (limits, caps, rates). Nothing folds its writes, so
    it does not wait for them to show (`read_your_writes_s=0`) unless told.
    """

    @contextlib.asynccontextmanager
    async def start(**changes: Any) -> AsyncIterator[Gateway]:
        database = f"sqlite:///{tmp_path / 'status.sqlite3'}"
        shell = create_app(
            settings_for(fresh_nats_url, database, tmp_path, **{"read_your_writes_s": 0, **changes})
        )
        async with AsyncTestClient(shell, timeout=60) as client:
            yield Gateway(shell.app, client, fresh_nats_url)

    return start


@pytest.fixture
def served_with(
    fresh_nats_url: str, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[str]]:
    """`async with served_with(**settings) as url`: like `gateway_with`, served by uvicorn on loopback."""

    def start(**changes: Any) -> contextlib.AbstractAsyncContextManager[str]:
        database = f"sqlite:///{tmp_path / 'status.sqlite3'}"
        return serve(settings_for(fresh_nats_url, database, tmp_path, **{"read_your_writes_s": 0, **changes}))

    return start
