"""Fixtures for the csa client tests: a sandbox that accepts a sentinel webKey, admin calls, clients."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from fmcsa_embedded import free_port, stop_process, wait_for_port
from fmcsa_runtime.logging import configure_logging
from fmcsa_source_csa.settings import Settings
from fmcsa_source_csa.upstream import QCMobileClient

SANDBOX_KEY = "sandbox-webkey"  # the sandbox's default FMCSA_SANDBOX_QCMOBILE_WEB_KEY
SENTINEL_KEY = "csa-sentinel-key-7f3a9c2e"  # accepted by `sentinel_sandbox_url`, searched for everywhere


@pytest.fixture
def sentinel_sandbox_url(tmp_path: Path) -> Iterator[str]:
    """A sandbox of this test's own whose QCMobile webKey is the sentinel."""
    port = free_port()
    with open(tmp_path / "sandbox.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fmcsa_sandbox"],
            env={
                **os.environ,
                "FMCSA_SANDBOX_HOST": "127.0.0.1",
                "FMCSA_SANDBOX_PORT": str(port),
                "FMCSA_SANDBOX_QCMOBILE_WEB_KEY": SENTINEL_KEY,
                "FMCSA_LOG_JSON": "true",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port("127.0.0.1", port, within_s=20, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, grace_s=5)


MakeClient = Callable[..., QCMobileClient]


@pytest.fixture
def sentinel_key() -> str:
    return SENTINEL_KEY


@pytest.fixture
def logging_configured() -> Iterator[None]:
    """The production logging setup (structlog through the standard library, `redact` on every line)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(service="source-csa-test", level="DEBUG", json=True)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Build clients against a sandbox URL; every one is closed after the test."""
    made: list[QCMobileClient] = []

    def make(url: str, *, web_key: str | None = SANDBOX_KEY, **overrides: Any) -> QCMobileClient:
        settings = Settings.model_validate(
            {
                "base_url": f"{url}/qc/services",
                "web_key": SecretStr(web_key) if web_key is not None else None,
                "read_timeout_s": 5.0,
                "rate_per_s": 50.0,
                **overrides,
            }
        )
        client = QCMobileClient.from_settings(settings)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
