"""A sandbox process shared by the integration tests (knobs and counters reset before each test), and a
way to start one of a test's own with other settings (the pattern of the root conftest's `run_sandbox`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fmcsa_embedded import free_port, stop_process, wait_for_port
from fmcsa_sandbox.settings import Settings

WEB_KEY = "sandbox-webkey"
APP_TOKEN = "sandbox-app-token"
API_KEY = "sandbox-api-key"
LAPSED_KEY = "lapsed-key-0001"


@dataclass
class Sandbox:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


@contextlib.contextmanager
def start_sandbox(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Sandbox]:
    """Run `python -m fmcsa_sandbox` on a free loopback port with extra `FMCSA_SANDBOX_*` settings."""
    port = free_port()
    log = tmp / f"sandbox-{port}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fmcsa_sandbox"],
            env={
                **os.environ,
                "FMCSA_SANDBOX_HOST": "127.0.0.1",
                "FMCSA_SANDBOX_PORT": str(port),
                "FMCSA_LOG_JSON": "true",
                **(env or {}),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port("127.0.0.1", port, within_s=20, process=process)
        yield Sandbox(f"http://127.0.0.1:{port}", process, log)
    finally:
        stop_process(process, grace_s=5)


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    env = {"FMCSA_SANDBOX_SAFERWEB_LAPSED_KEYS": LAPSED_KEY}
    with start_sandbox(tmp_path_factory.mktemp("sandbox"), env) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def shared_client(shared_sandbox: Sandbox) -> Iterator[httpx.Client]:
    with shared_sandbox.client() as client:  # one client: building one costs ~0.1 s (its TLS context)
        yield client


@pytest.fixture
def sandbox(shared_sandbox: Sandbox, shared_client: httpx.Client) -> Sandbox:
    """The shared sandbox with default knobs and zeroed counters (its data version is never bumped)."""
    defaults = Settings.model_construct().runtime_knobs()
    shared_client.put("/_sandbox/faults", json=defaults).raise_for_status()
    shared_client.post("/_sandbox/reset").raise_for_status()
    return shared_sandbox


@pytest.fixture
def http(sandbox: Sandbox, shared_client: httpx.Client) -> httpx.Client:
    return shared_client


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[Sandbox]]:
    """Start a sandbox of the test's own: `with own_sandbox({"FMCSA_SANDBOX_...": "..."}) as sandbox:`."""

    def start(env: dict[str, str] | None = None) -> contextlib.AbstractContextManager[Sandbox]:
        return start_sandbox(tmp_path, env)

    return start
