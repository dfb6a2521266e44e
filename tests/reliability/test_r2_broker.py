"""R2 broker restart: kill -9 nats-server twice while requests are being published and answered, and
start it again on the same port and store. Nothing is lost: every request whose publish was
acknowledged is in the stream and ends with exactly one terminal outcome in the projection.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest
from nats.aio.client import Client
from reliability_support import (
    SCALE,
    SOURCES,
    Projection,
    System,
    ledger,
    manual_request,
    publish_surely,
    stream_requests_and_outcomes,
    wait_settled,
)

from fmcsa_events.bus import Bus

pytestmark = pytest.mark.reliability

DOTS = range(2_000_000, 2_000_000 + SCALE.broker_requests)
CHUNKS = 10
BROKER_KILLS_AFTER_CHUNK = (3, 7)


@pytest.mark.timeout(SCALE.settle_s + 300)
async def test_r2_a_killed_broker_loses_nothing(
    system: System, nc: Client, report: Callable[[str], None]
) -> None:
    rng = random.Random(2)
    bus = Bus(nc.jetstream(), producer="reliability", timeout_s=3)
    requests = [manual_request(SOURCES[n % 3], dot) for n, dot in enumerate(DOTS)]
    size = -(-len(requests) // CHUNKS)
    published = 0
    down: list[float] = []
    for index in range(CHUNKS):
        chunk = requests[index * size : (index + 1) * size]
        sending = asyncio.create_task(publish_surely(bus, chunk))
        if index in BROKER_KILLS_AFTER_CHUNK:
            await asyncio.sleep(rng.uniform(0.0, 0.5))  # some of this chunk on the wire
            system.kill_broker()
            started = time.monotonic()
            await asyncio.sleep(rng.uniform(0.5, 2.0))  # how long the broker stays down (chaos, not a wait)
            system.restart_broker()
            down.append(time.monotonic() - started)
        published += await sending
        await asyncio.sleep(0.5)  # answers flow between chunks

    projection = Projection(system.status_url)
    quiet = await wait_settled(nc, projection, DOTS, SOURCES, within_s=SCALE.settle_s)
    counted = await ledger(nc.jetstream(), projection, DOTS)
    in_stream, _ = await stream_requests_and_outcomes(nc.jetstream(), DOTS)
    missing = {str(r.request_id) for r in requests} - set(in_stream)
    report(
        f"R2 broker_kills={len(down)} requests={counted.requests} terminal={counted.terminal} "
        f"doubled={counted.doubled} lost={counted.lost + len(missing)} published={published} "
        f"down_s={'/'.join(f'{d:.1f}' for d in down)} settled={quiet}"
    )
    assert not missing, f"{len(missing)} acknowledged publishes are not in the stream"
    assert counted.requests == len(requests)
    assert counted.doubled == 0, counted.examples
    assert counted.lost == 0, counted.examples
    assert all(system.alive().values()), system.alive()
    assert quiet
