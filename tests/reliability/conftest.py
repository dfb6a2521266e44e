"""Fixtures of the reliability suite (R1-R8): one system of real processes shared by the folder, so the
faults pile up on the same stream and store and R8 replays what all of them left behind.

Every test here is marked `reliability`: `pytest -m reliability tests/reliability -s` runs them alone,
and `FMCSA_RELIABILITY_SCALE=full` at the issue's scale (see RELIABILITY.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator

import nats
import pytest
from nats.aio.client import Client

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from reliability_support import Secrets, System, record, service_env  # noqa: E402  # needs HERE on sys.path

ALL = ["sandbox", "status", "csa", "violations", "inspections", "authority", "scheduler", "gateway"]


@pytest.fixture(scope="package")
def secret() -> Secrets:
    return Secrets()


@pytest.fixture(scope="package")
def system(tmp_path_factory: pytest.TempPathFactory, secret: Secrets) -> Iterator[System]:
    """Every service as its own process on one data folder, SQLite stores (R3 adds PostgreSQL)."""
    for key in [k for k in os.environ if k.startswith("FMCSA_") and k.endswith("_DATABASE_URL")]:
        if key != "FMCSA_TEST_DATABASE_URL":
            pytest.fail(f"{key} is set: the reliability system must choose its own stores")
    running = System(tmp_path_factory.mktemp("reliability") / "data", ALL, service_env(secret), secret)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def nc(system: System) -> AsyncIterator[Client]:
    client = await nats.connect(
        system.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5, **system.launcher.bus_admin()
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a result line past pytest's capture and append it to test-artifacts/reliability.txt."""

    def emit(line: str) -> None:
        record(line)
        with capsys.disabled():
            print(f"\n{line}")

    return emit
