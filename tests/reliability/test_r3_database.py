"""R3 database outage: the projector's database is unreachable for a while (SQLite: another process
holds an exclusive lock on its file; PostgreSQL: its role may not log in and every connection it has
is terminated) while requests keep being answered. Afterwards the projector catches up: every
request ends with exactly one terminal outcome, nothing lost or doubled, and a replay equals it.

PostgreSQL runs in a role and schema of this test's own (created and dropped here), so terminating
connections touches nothing else on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.aio.client import Client
from reliability_support import (
    SCALE,
    SOURCES,
    Ledger,
    Projection,
    Secrets,
    System,
    ledger,
    manual_request,
    publish_surely,
    service_env,
    wait_settled,
)
from sqlalchemy.engine import make_url

from fmcsa_events.bus import Bus
from fmcsa_status_view.location import Location

pytestmark = pytest.mark.reliability

DOTS = range(3_000_000, 3_000_000 + SCALE.outage_requests)


@dataclass
class Outage:
    """What took the database away, and what the projector saw of it."""

    seconds: float = 0.0
    terminated: int = 0
    position_before: int = 0
    position_during: int = 0


@contextlib.asynccontextmanager
async def sqlite_locked(path: Path, outage: Outage) -> AsyncIterator[None]:
    """Hold SQLite's exclusive lock on `path` from this process: the projector can write nothing."""
    connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(connection.execute, "BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()
        outage.seconds = time.monotonic() - started


@contextlib.asynccontextmanager
async def postgres_refused(admin_dsn: str, role: str, outage: Outage) -> AsyncIterator[None]:
    """The role may not log in and its connections are terminated until the block ends."""
    admin = await asyncpg.connect(admin_dsn)
    stop = asyncio.Event()

    async def terminate() -> None:
        while not stop.is_set():
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1", role
            )
            outage.terminated += int(killed or 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    await admin.execute(f'ALTER ROLE "{role}" NOLOGIN')
    started = time.monotonic()
    killer = asyncio.create_task(terminate())
    try:
        yield
    finally:
        stop.set()
        await killer
        await admin.execute(f'ALTER ROLE "{role}" LOGIN')
        await admin.close()
        outage.seconds = time.monotonic() - started


@dataclass
class PostgresStore:
    admin_dsn: str
    role: str
    url: str  # as the projector connects: the role, its schema
    reader_url: str  # as the test reads it: the admin, the same schema


@contextlib.asynccontextmanager
async def postgres_store(base: str) -> AsyncIterator[PostgresStore]:
    """A role and a schema of this test's own on the configured server; dropped afterwards."""
    admin_dsn = base.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgresql+psycopg2://", "postgresql://"
    )
    parsed = make_url(admin_dsn)
    database = parsed.database or "postgres"
    name = f"r3_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE ROLE "{name}" LOGIN')
    await admin.execute(f'GRANT CONNECT, CREATE ON DATABASE "{database}" TO "{name}"')
    await admin.execute(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
    url = parsed.set(username=name, password=None).update_query_dict({"search_path": name})
    reader = parsed.update_query_dict({"search_path": name})
    try:
        yield PostgresStore(
            admin_dsn,
            name,
            url.render_as_string(hide_password=False),
            reader.render_as_string(hide_password=False),
        )
    finally:
        await admin.execute(f'ALTER ROLE "{name}" LOGIN')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
        for schema in (name, f"{name}_rebuild", f"{name}_retired"):
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM "{name}"')
        await admin.execute(f'DROP ROLE "{name}"')
        await admin.close()


async def run_outage(
    system: System,
    nc: Client,
    projection: Projection,
    outage_cm: Callable[[Outage], contextlib.AbstractAsyncContextManager[None]],
) -> tuple[Outage, Ledger]:
    bus = Bus(nc.jetstream(), producer="reliability")
    requests = [manual_request(SOURCES[n % 3], dot) for n, dot in enumerate(DOTS)]
    half = len(requests) // 2
    await publish_surely(bus, requests[:half])
    # the projector is seen working before the outage (and has something left to catch up after it)
    await wait_settled(nc, projection, DOTS, SOURCES, within_s=SCALE.settle_s)
    outage = Outage()
    async with outage_cm(outage):
        outage.position_before = await projection.position()
        await publish_surely(bus, requests[half:])  # answered by the sources meanwhile
        await asyncio.sleep(SCALE.outage_s)  # the outage itself: nothing to poll for
        outage.position_during = await projection.position()
    await wait_settled(nc, projection, DOTS, SOURCES, within_s=SCALE.settle_s)
    return outage, await ledger(nc.jetstream(), projection, DOTS)


@pytest.mark.timeout(SCALE.outage_s + SCALE.settle_s + 300)
@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_r3_the_projector_catches_up_after_its_database_was_gone(
    store: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    if store == "sqlite":
        system: System = request.getfixturevalue("system")
        nc = await nats.connect(system.nats_url, **system.launcher.bus_admin())
        try:
            projection = Projection(system.status_url)
            live = Location(system.status_url).live_path()
            outage, counted = await run_outage(system, nc, projection, lambda o: sqlite_locked(live, o))
        finally:
            await nc.close()
        verify = "in R8"
    else:
        base = request.getfixturevalue("postgres_url")
        if base is None:
            pytest.skip("PostgreSQL: set FMCSA_TEST_DATABASE_URL (CI does) or run a Docker engine")
        async with postgres_store(base) as pg:
            secret = Secrets()
            env = service_env(secret, FMCSA_STATUS_DATABASE_URL=pg.url, FMCSA_STATUS_RETRY_MAX_S="1")
            services = ["sandbox", "status", "csa", "violations", "inspections"]
            system = System(tmp_path / "data", services, env, secret).start()
            try:
                nc = await nats.connect(system.nats_url, **system.launcher.bus_admin())
                try:
                    projection = Projection(pg.reader_url)
                    outage, counted = await run_outage(
                        system, nc, projection, lambda o: postgres_refused(pg.admin_dsn, pg.role, o)
                    )
                finally:
                    await nc.close()
                checked = await asyncio.to_thread(system.verify_rebuild)
                verify = f"exit={checked.returncode}"
            finally:
                system.stop()
    report(
        f"R3 store={store} outage_s={outage.seconds:.1f} requests={counted.requests} "
        f"terminal={counted.terminal} doubled={counted.doubled} lost={counted.lost} "
        f"position_before={outage.position_before} position_during={outage.position_during} "
        f"connections_terminated={outage.terminated} verify={verify}"
    )
    assert outage.position_during == outage.position_before, "the projector wrote during the outage"
    assert counted.requests == len(DOTS)
    assert counted.doubled == 0, counted.examples
    assert counted.lost == 0, counted.examples
    assert counted.terminal == counted.requests
    assert verify in ("in R8", "exit=0"), verify
