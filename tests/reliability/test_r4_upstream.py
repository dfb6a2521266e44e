"""R4 upstream faults: the sandbox answers 10% 5xx, 5% 429, 2% malformed bodies and 1% hangs, and
limits each upstream to exactly the rate its client is configured for, while another process keeps
both cores busy. Every request ends, with a
kind that names what went wrong (never `internal`), within the bounded attempts; the sandbox never
refuses a call for going over its rate limit (its injected 429s are counted apart).

The sandbox's limit is a leaky bucket of one second's worth, like the clients' limiters: across a
calendar-second boundary it admits up to twice the rate, so `busiest_calendar_second` may exceed the
rate without a breach; a breach is a 429 from the limiter, `sandbox_429s`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client
from reliability_support import (
    CLIENT_RATE_PER_S,
    MAX_ATTEMPTS,
    SCALE,
    SOURCES,
    Projection,
    System,
    busy_cores,
    ledger,
    manual_request,
    publish_surely,
    wait_settled,
)

from fmcsa_events.bus import Bus

pytestmark = pytest.mark.reliability

DOTS = range(4_000_000, 4_000_000 + SCALE.fault_requests)
# what a fault may end in when attempts run out; anything else (internal, not_found...) is wrong
FAULT_KINDS = {"upstream_error", "rate_limited", "invalid_response", "timeout"}
FAULTS = {"p_5xx": 0.10, "p_429": 0.05, "p_malformed": 0.02, "p_hang": 0.01}


def knobs(*, on: bool) -> dict[str, Any]:
    settings: dict[str, Any] = {"hang_s": 3.0 if on else 300.0, "retry_after": True}
    for source in SOURCES:
        for name, p in FAULTS.items():
            settings[f"{source}_{name}"] = p if on else 0.0
        settings[f"{source}_rate_per_s"] = CLIENT_RATE_PER_S if on else 0.0
    return settings


@pytest.mark.timeout(SCALE.settle_s + 300)
async def test_r4_every_request_ends_with_the_right_kind_and_no_rate_limit_is_hit(
    system: System, nc: Client, report: Callable[[str], None]
) -> None:
    await system.sandbox_faults(**knobs(on=True))
    await system.sandbox_reset()
    try:
        # both cores kept busy the whole time by another process: the clients' pace must hold on a box
        # where every process (sources, sandbox, broker) is descheduled now and then
        with busy_cores(SCALE.settle_s + 60):
            bus = Bus(nc.jetstream(), producer="reliability")
            requests = [manual_request(source, dot) for dot in DOTS for source in SOURCES]
            await publish_surely(bus, requests)
            projection = Projection(system.status_url)
            quiet = await wait_settled(nc, projection, DOTS, SOURCES, within_s=SCALE.settle_s)
            stats = await system.sandbox_stats()
    finally:
        await system.sandbox_faults(**knobs(on=False))
    counted = await ledger(nc.jetstream(), projection, DOTS)
    per_source = stats["sources"]
    limit_429s = sum(per_source[s]["served_429"] for s in SOURCES)
    injected = {
        kind: sum(per_source[s]["faults"][kind] for s in SOURCES)
        for kind in ("5xx", "429", "malformed", "hang")
    }
    calls = sum(per_source[s]["requests"] for s in SOURCES)
    busiest = max(per_source[s]["max_per_s"] for s in SOURCES)
    kinds = ",".join(f"{k}:{n}" for k, n in sorted(counted.outcomes.items()))
    report(
        f"R4 requests={counted.requests} terminal={counted.terminal} doubled={counted.doubled} "
        f"lost={counted.lost} outcomes={kinds} max_attempts={counted.max_attempts}/{MAX_ATTEMPTS} "
        f"upstream_calls={calls} injected={','.join(f'{k}:{n}' for k, n in injected.items())} "
        f"sandbox_429s={limit_429s} rate_limit={CLIENT_RATE_PER_S:g}/s busiest_calendar_second={busiest} "
        f"settled={quiet}"
    )
    assert counted.requests == len(requests)
    assert counted.doubled == 0, counted.examples
    assert counted.lost == 0, counted.examples
    assert set(counted.outcomes) <= {"synced", *FAULT_KINDS}, counted.outcomes
    assert counted.max_attempts <= MAX_ATTEMPTS
    assert sum(injected.values()) > 0, "no fault was injected: the test proves nothing"
    assert limit_429s == 0, {s: per_source[s]["served_429"] for s in SOURCES}
    assert quiet
