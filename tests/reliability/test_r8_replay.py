"""R8 replay after chaos: after everything R1-R7 did to the shared system (kills, broker restarts, a
locked database, upstream faults, poison, refused requests), plus one more kill -9 of the projector
in the middle of a burst here, `python -m fmcsa_status.rebuild --verify --from-scratch` folds the whole
stream into a fresh store and finds no row that differs from the live projection (it exits 1 on a
difference).
R3 runs the same check on its PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client
from reliability_support import (
    SCALE,
    SOURCES,
    Projection,
    System,
    manual_request,
    publish_surely,
    wait_settled,
)

from fmcsa_events.bus import Bus
from fmcsa_events.topology import EVENTS_STREAM

pytestmark = pytest.mark.reliability

DOTS = range(8_000_000, 8_000_090)


@pytest.mark.timeout(SCALE.settle_s + 600)
async def test_r8_a_replay_of_the_whole_stream_equals_the_live_projection(
    system: System, nc: Client, report: Callable[[str], None], wait_until: Any
) -> None:
    projection = Projection(system.status_url)
    before = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
    requests = [manual_request(SOURCES[n % 3], dot) for n, dot in enumerate(DOTS)]
    sending = asyncio.create_task(publish_surely(Bus(nc.jetstream(), producer="reliability"), requests))

    async def folding_the_burst() -> bool:
        return await projection.position() > before + len(requests) // 10

    await wait_until(folding_the_burst, what="the projector folding the burst", within_s=60)
    system.kill("status")  # mid-burst: the replay must also equal a projection that was killed
    await asyncio.sleep(0.5)  # the fault: the projector stays down half a second while the burst goes on
    system.restart("status")
    await sending
    assert await wait_settled(nc, projection, DOTS, SOURCES, within_s=SCALE.settle_s)
    last = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
    started = time.monotonic()
    verify = await asyncio.to_thread(system.verify_rebuild)
    seconds = time.monotonic() - started
    verdict = next((line for line in verify.stdout.splitlines() if line.startswith("verify:")), "")
    differences = verdict.split(" row(s)")[0].removeprefix("verify: ") if verdict else "?"
    report(
        f"R8 events={last} position={await projection.position()} rejected={await projection.rejected()} "
        f"differences={differences} exit={verify.returncode} rebuild_s={seconds:.1f} "
        f"kills_total={sum(system.kills.values())}"
    )
    assert verify.returncode == 0, (verify.stdout + verify.stderr)[-4000:]
    assert differences == "0"
