"""R4, the upstream's rate limit learned and shared: a source configured above the sandbox's limit learns
it (AIMD), and two replicas of one source share one pace. Each test runs its own small system (the
broker, the sandbox and the csa source as processes), since the shared one runs every source at the
reliability rate; outcomes are counted on the stream itself.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from reliability_support import manual_request, publish_surely, record, stream_requests_and_outcomes

from fmcsa_cli.launcher import Launcher, bus_credential_env
from fmcsa_embedded import Child, free_port, wait_for_port
from fmcsa_events.bus import Bus
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import SourceSynced
from fmcsa_events.topology import PACE_BUCKET
from fmcsa_source_kit.pacing import pace_key

pytestmark = pytest.mark.reliability


def csa_system(data_dir: Path, *, client_rate: float, sandbox_rate: float, concurrency: int) -> Launcher:
    return Launcher(
        data_dir=data_dir,
        gateway_port=free_port(),
        nats_sync_always=False,
        services=["sandbox", "csa"],
        extra_env={
            "FMCSA_LOG_JSON": "true",
            "FMCSA_JWT_SECRET": "pace-test-" + "x" * 40,
            "FMCSA_CSA_RATE_PER_S": str(client_rate),
            "FMCSA_CSA_CONCURRENCY": str(concurrency),
            "FMCSA_CSA_READ_TIMEOUT_S": "5",
            "FMCSA_SANDBOX_CSA_RATE_PER_S": str(sandbox_rate),
        },
    )


@pytest.fixture
def launched(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Launcher]:
    launcher = csa_system(tmp_path / "data", **request.param)
    launcher.start()
    try:
        yield launcher
    finally:
        launcher.stop(grace_s=10)


async def sandbox_stats(launcher: Launcher) -> dict[str, Any]:
    assert launcher.sandbox_url is not None
    async with httpx.AsyncClient(base_url=launcher.sandbox_url, timeout=10) as http:
        answer = await http.get("/_sandbox/stats")
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()["sources"]["csa"]
        return stats


async def run_requests(
    launcher: Launcher, dots: range, *, within_s: float
) -> tuple[int, int, int, dict[str, Any]]:
    """Publish a csa request per DOT, wait until each has an outcome; (requests, with one outcome,
    synced, the shared pace document)."""
    assert launcher.nats is not None
    nc = await nats.connect(launcher.nats.url, **launcher.bus_admin())
    try:
        js = nc.jetstream()
        await publish_surely(
            Bus(js, producer="reliability"), [manual_request(SourceKey.CSA, d) for d in dots]
        )
        deadline = time.monotonic() + within_s
        while True:
            requests, outcomes = await stream_requests_and_outcomes(js, dots)
            if len(outcomes) >= len(requests) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)  # poll interval: each pass reads the stream
        exactly_one = sum(1 for rid in requests if len(outcomes.get(rid, [])) == 1)
        synced = sum(1 for rid in requests if any(isinstance(o, SourceSynced) for o in outcomes.get(rid, [])))
        kv = await js.key_value(PACE_BUCKET)
        assert launcher.sandbox_url is not None
        entry = await kv.get(pace_key("csa", f"{launcher.sandbox_url}/qc/services"))
        return len(requests), exactly_one, synced, json.loads(entry.value or b"{}")
    finally:
        await nc.close()


@pytest.mark.parametrize(
    "launched", [{"client_rate": 20.0, "sandbox_rate": 10.0, "concurrency": 16}], indirect=True
)
@pytest.mark.timeout(300)
async def test_a_source_configured_at_20_per_s_learns_a_sandbox_limited_to_10(launched: Launcher) -> None:
    dots = range(6_000_000, 6_000_000 + 140)  # two calls each: about 28 s at 10/s, probes included
    started = time.monotonic()
    requests, exactly_one, synced, pace = await run_requests(launched, dots, within_s=240)
    seconds = time.monotonic() - started
    stats = await sandbox_stats(launched)
    line = (
        f"R4-pace 20/s against 10/s: requests={requests} exactly_one={exactly_one} synced={synced} "
        f"calls={stats['requests']} served_429={stats['served_429']} pace_end={pace['rate']:.2f}/s "
        f"pace_throttled={pace['throttled']} seconds={seconds:.1f} "
        f"achieved={stats['admitted'] / seconds:.2f}/s"
    )
    record(line)
    print(f"\n{line}")
    assert requests == len(dots)
    assert exactly_one == requests  # every request ends, and ends once
    assert pace["rate"] <= 10.0  # converged to the sandbox's limit or under it
    assert stats["served_429"] <= 12  # a handful: the first second's burst and a probe or two
    assert pace["throttled"] == stats["served_429"]  # every 429 was seen and shared


@pytest.mark.parametrize(
    "launched", [{"client_rate": 10.0, "sandbox_rate": 10.0, "concurrency": 16}], indirect=True
)
@pytest.mark.timeout(300)
async def test_two_replicas_of_a_source_together_stay_under_the_sandboxs_limit(launched: Launcher) -> None:
    # a second csa replica: same settings, same database and consumer, its own HTTP port
    port = free_port()
    env = (
        dict(launched._env)
        | {"FMCSA_CSA_HTTP_PORT": str(port)}
        | bus_credential_env(launched.data_dir, "source-csa")
    )
    second = Child(
        "csa-2", [sys.executable, "-m", "fmcsa_source_csa"], env, log_path=launched.logs_dir / "csa-2.log"
    ).start()
    try:
        wait_for_port("127.0.0.1", port, within_s=60, process=second.process)
        await asyncio.sleep(REPLICAS_SEEN_S)  # each replica counts the other at its next heartbeat
        dots = range(6_100_000, 6_100_000 + 60)  # two calls each: 12 s at the shared 10/s
        requests, exactly_one, synced, pace = await run_requests(launched, dots, within_s=180)
        stats = await sandbox_stats(launched)
        handled = {
            name: handled_by(path)
            for name, path in (
                ("csa", launched.logs_dir / "csa.log"),
                ("csa-2", launched.logs_dir / "csa-2.log"),
            )
        }
    finally:
        second.stop(grace_s=10)
    line = (
        f"R4-pace two replicas at 10/s against 10/s: requests={requests} exactly_one={exactly_one} "
        f"synced={synced} calls={stats['requests']} served_429={stats['served_429']} "
        f"max_per_s={stats['max_per_s']} handled={handled} pace_end={pace['rate']:.2f}/s"
    )
    record(line)
    print(f"\n{line}")
    assert exactly_one == requests == len(dots)
    assert all(n > 0 for n in handled.values()), handled  # both replicas called the upstream
    assert stats["served_429"] == 0
    assert pace["throttled"] == 0


REPLICAS_SEEN_S = 5.0


def handled_by(log: Path) -> int:
    """Outcomes a replica finished, from its JSON log."""
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        if '"sync_finished"' in line:
            count += 1
    return count
