"""Property-based fuzzing of the served OpenAPI with schemathesis: at least 1,000 generated requests over
every operation (the endless /api/events stream aside), and not one answered with a 5xx.

The gateway runs as its own process (`python -m fmcsa_gateway`) on a real nats-server, reading the
store the real projector writes, with companies, requests and schedules already in it so the reads
have rows to return. Requests carry an admin token: every route is reachable.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_embedded import Child, free_port
from fmcsa_runtime.tokens import Role

MIN_REQUESTS = 1_000


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """One store is enough here: the fuzzing is about the HTTP edge (overrides the conftest's pair)."""
    return f"sqlite:///{tmp_path / 'status.sqlite3'}"


@pytest.fixture
def gateway_process(
    fresh_nats_url: str, database_url: str, tmp_path: Path, projector: Child, jwt_secret: str
) -> Any:
    port = free_port()
    env = {
        "FMCSA_NATS_URL": fresh_nats_url,
        "FMCSA_DATA_DIR": str(tmp_path),
        "FMCSA_GATEWAY_STATUS_DATABASE_URL": database_url,
        "FMCSA_GATEWAY_PORT": str(port),
        "FMCSA_JWT_SECRET": jwt_secret,
        "FMCSA_LOG_JSON": "true",
        "FMCSA_LOG_LEVEL": "WARNING",
        # alert rules can be stored; no allow-list: every private, loopback or special-use URL is a 422
        "FMCSA_WEBHOOK_SECRET_KEY": base64.urlsafe_b64encode(b"schemathesis-webhook-key-32bytes").decode(),
    }
    child = Child(
        "gateway",
        [sys.executable, "-m", "fmcsa_gateway"],
        {**os.environ, **env},
        log_path=tmp_path / "gateway.log",
    )
    child.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stop(grace_s=10)


@pytest.mark.timeout(600)
async def test_a_thousand_generated_requests_get_no_server_error(
    gateway_process: str, bearer: Any, wait_until: Any, tmp_path: Path
) -> None:
    if importlib.util.find_spec("schemathesis") is None:
        pytest.fail("schemathesis is not installed: it is in fmcsa-gateway's `test` extra (root dev group)")
    admin = bearer(Role.ADMIN, "fuzzer")
    async with httpx.AsyncClient(base_url=gateway_process, timeout=30) as client:

        async def ready() -> bool:
            try:
                return (await client.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(ready, what="the gateway process ready", within_s=30)
        await client.post(
            "/api/companies/import", json=[str(n) for n in range(2847190, 2847220)], headers=admin
        )
        await client.post("/api/sync/trigger", json={"dot_numbers": ["2847193", "2847194"]}, headers=admin)
        await client.put("/api/schedules/csa", json={"cron": "0 */6 * * *"}, headers=admin)

        async def seeded() -> bool:
            return len((await client.get("/api/companies", headers=admin)).json()["items"]) == 30

        await wait_until(seeded, what="the seeded companies in the view")

    reports = tmp_path / "schemathesis"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{gateway_process}/schema/openapi.json",
        "--header",
        f"Authorization: {admin['Authorization']}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--exclude-path",
        "/api/events",
        "--max-examples",
        "40",  # per operation: about 1,400 requests over the ~35 operations, in about half the time of 100
        "--seed",
        "20261123",
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--report",
        "har",
        "--report-dir",
        str(reports),
        "--no-color",
    ]
    run = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=540, check=False
    )
    (tmp_path / "schemathesis.log").write_text(run.stdout + run.stderr)
    entries = [e for har in reports.glob("*.json") for e in json.loads(har.read_text())["log"]["entries"]]
    statuses = collections.Counter(e["response"]["status"] for e in entries)
    server_errors = sorted(
        {(e["request"]["method"], e["request"]["url"]) for e in entries if e["response"]["status"] >= 500}
    )
    print(f"schemathesis: {len(entries)} requests, statuses {dict(sorted(statuses.items()))}")
    assert not server_errors, server_errors[:10]
    assert len(entries) >= MIN_REQUESTS, run.stdout[-3000:]
    assert run.returncode == 0, run.stdout[-6000:]
