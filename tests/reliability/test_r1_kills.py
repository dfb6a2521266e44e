"""R1 process kills: while the scheduler syncs every company from every source (and people trigger
syncs through the gateway), kill -9 a random service process (scheduler, each source, projector,
gateway) every 1-3 s and restart it 0-2 s later. Every `SyncRequested` in the stream ends with
exactly one terminal outcome in the projection; none is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import httpx
import pytest
from nats.aio.client import Client
from reliability_support import (
    SCALE,
    SOURCES,
    Projection,
    System,
    chaos,
    ledger,
    wait_settled,
)

from fmcsa_events.bus import Bus
from fmcsa_events.models import CompanyRegistered, ScheduleChanged
from fmcsa_runtime.tokens import Role

pytestmark = pytest.mark.reliability

DOTS = range(1_000_000, 1_000_000 + SCALE.companies)
VICTIMS = ["scheduler", "csa", "violations", "inspections", "authority", "status", "gateway"]


async def trigger_through_the_gateway(
    system: System, rng: random.Random, stop: asyncio.Event
) -> tuple[int, int]:
    """Manual syncs of random companies while the gateway may be dead: (accepted, refused or failed)."""
    accepted = failed = 0
    headers = system.bearer(Role.OPERATOR, "r1-operator")
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=5) as http:
        while not stop.is_set():
            body = {"dot_numbers": [str(rng.choice(DOTS))], "sources": [rng.choice(SOURCES).value]}
            try:
                answer = await http.post("/api/sync/trigger", json=body, headers=headers)
                if answer.status_code == 202:
                    accepted += 1
                else:
                    failed += 1  # 409: that pair is in flight already
            except httpx.TransportError:
                failed += 1  # the gateway is down right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    return accepted, failed


@pytest.mark.timeout(SCALE.chaos_s + SCALE.settle_s + 300)
async def test_r1_every_request_ends_once_while_processes_are_killed(
    system: System, nc: Client, report: Callable[[str], None]
) -> None:
    js = nc.jetstream()
    bus = Bus(js, producer="reliability")
    await bus.publish_many([CompanyRegistered(dot=str(dot), name=f"R1 {dot}") for dot in DOTS])
    for source in SOURCES:  # every company once per (scaled) five minutes
        await bus.publish(ScheduleChanged(source=source, interval_minutes=5, enabled=True))
    rng = random.Random(20261205)
    stop = asyncio.Event()
    triggers = asyncio.create_task(trigger_through_the_gateway(system, random.Random(7), stop))
    try:
        kills = await chaos(system, VICTIMS, seconds=SCALE.chaos_s, rng=rng, stop=stop)
    finally:
        stop.set()
        accepted, _ = await triggers
        system.restart_dead()
    for source in SOURCES:  # no new scheduled requests: what is in the stream must now all end
        await bus.publish(ScheduleChanged(source=source, interval_minutes=5, enabled=False))

    projection = Projection(system.status_url)
    quiet = await wait_settled(nc, projection, DOTS, SOURCES, within_s=SCALE.settle_s)
    counted = await ledger(js, projection, DOTS)
    per_victim = ",".join(f"{name}:{system.kills[name]}" for name in VICTIMS)
    report(
        f"R1 kills={kills} requests={counted.requests} terminal={counted.terminal} "
        f"doubled={counted.doubled} lost={counted.lost} companies={len(DOTS)} "
        f"manual_triggers={accepted} killed={per_victim} settled={quiet}"
    )
    assert all(system.alive().values()), system.alive()
    assert counted.requests >= len(DOTS) * len(SOURCES) // 2, "the scheduler requested too little to judge"
    assert counted.doubled == 0, counted.examples
    assert counted.lost == 0, counted.examples
    assert counted.terminal == counted.requests
    assert quiet, "the consumers or the projector never went idle"
