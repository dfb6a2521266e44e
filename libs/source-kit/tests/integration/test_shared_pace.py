"""Replicas of a source share one pace on a real JetStream: they split it, change it once per congestion
by compare-and-set, and take over a stopped replica's share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from fmcsa_events.topology import PACE_BUCKET, PACE_REPLICAS_BUCKET, Topology, declare
from fmcsa_source_kit.pacing import UpstreamPace, pace_key

WaitUntil = Callable[..., Awaitable[Any]]
BASE = "http://upstream.test:8443/api"
KEY = pace_key("csa", BASE)


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    try:
        yield client
    finally:
        await client.close()


def replica(name: str, ceiling: float = 20.0) -> UpstreamPace:
    return UpstreamPace(source="csa", base_url=BASE, ceiling=ceiling, replica=name)


async def test_two_replicas_split_the_pace_and_a_stopped_one_hands_its_share_back(
    nc: Client, wait_until: WaitUntil
) -> None:
    first, second = replica("one"), replica("two")
    await first.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    await second.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    try:

        async def split() -> bool:
            return first.replicas == second.replicas == 2

        await wait_until(split, what="both replicas count two")
        assert first.share_per_s == second.share_per_s == 10.0
        assert first._bucket.refill_per_s == pytest.approx(10.0 * 0.99)  # each spends half
        beats = await nc.jetstream().key_value(PACE_REPLICAS_BUCKET)
        for name in ("one", "two"):
            doc = json.loads((await beats.get(f"{KEY}.{name}")).value or b"{}")
            assert doc["replica"] == name
    finally:
        await second.stop()

    async def alone() -> bool:
        return first.replicas == 1

    await wait_until(alone, what="the stopped replica's heartbeat is gone")
    assert first.share_per_s == 20.0
    await first.stop()


async def test_a_throttle_seen_by_one_replica_lowers_the_pace_of_both_once(
    nc: Client, wait_until: WaitUntil
) -> None:
    first, second = replica("one"), replica("two")
    await first.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    await second.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    try:
        sent_at = first._wall()
        # the same congestion answered to both: two calls sent before either saw a 429
        first._answered(sent_at, 429, {})
        second._answered(sent_at, 429, {"Retry-After": "1"})

        async def shared() -> bool:
            return first.state.throttled == second.state.throttled == 2

        await wait_until(shared, what="both replicas see both throttles")
        assert first.state.rate == second.state.rate == 10.0  # halved once, not twice
        kv = await nc.jetstream().key_value(PACE_BUCKET)
        stored = json.loads((await kv.get(KEY)).value or b"{}")
        assert (stored["rate"], stored["throttled"], stored["limit_seen"]) == (10.0, 2, 20.0)
    finally:
        await first.stop()
        await second.stop()


async def test_clean_answers_raise_the_shared_pace_one_step_per_interval_not_one_per_replica(
    nc: Client, wait_until: WaitUntil
) -> None:
    kv = await nc.jetstream().key_value(PACE_BUCKET)
    now = replica("seed")._wall()
    low = {"rate": 4.0, "ceiling": 20.0, "limit_seen": None, "changed_at": now - 1.0, "decreased_at": 0.0}
    await kv.put(KEY, json.dumps(low).encode())
    first, second = replica("one"), replica("two")
    await first.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    await second.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    try:
        assert first.state.rate == second.state.rate == 4.0  # a started replica adopts the stored pace
        history: list[float] = []
        for _ in range(3):
            first._answered(first._wall(), 200, {})
            second._answered(second._wall(), 200, {})

            async def stepped(before: float = first.state.rate) -> bool:
                return first.state.rate > before and second.state.rate == first.state.rate

            await wait_until(stepped, what="one step up", within_s=5.0)
            history.append(first.state.rate)
        steps = [round(b - a, 6) for a, b in zip([4.0, *history], history, strict=False)]
        assert steps == [2.0, 2.0, 2.0]  # 10% of 20 each time, whichever replica wrote it
    finally:
        await first.stop()
        await second.stop()


SANDBOX = "http://sandbox.test:8900"


@pytest.mark.parametrize(
    ("source", "first_url", "second_url"),
    [("authority", f"{SANDBOX}/qc/services", f"{SANDBOX}/"), ("inspections", SANDBOX, f"{SANDBOX}/")],
)
async def test_two_upstreams_of_a_source_on_one_host_keep_two_paces(
    nc: Client, wait_until: WaitUntil, source: str, first_url: str, second_url: str
) -> None:
    """The sandbox serves authority's QCMobile under `/qc/services` and DataHub at its root, and
    inspections' SaferWebAPI and DataHub both at its root: two paces each (the second labelled), each
    spending its own ceiling. Keyed by host alone they counted each other as replicas and each spent
    half (the full bench's authority and inspections ran at half their rates)."""
    first = UpstreamPace(source=source, base_url=first_url, ceiling=16.0)
    second = UpstreamPace(source=source, base_url=second_url, ceiling=4.0, upstream="datahub")
    assert first.key != second.key
    await first.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    await second.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
    try:
        beats = await nc.jetstream().key_value(PACE_REPLICAS_BUCKET)

        async def both_beat() -> bool:
            keys = await beats.keys()
            return all(any(k.startswith(f"{p.key}.") for k in keys) for p in (first, second))

        await wait_until(both_beat, what="both paces heartbeat")
        await asyncio.sleep(0.3)  # three more heartbeats each: a count of two would show by now
        assert (first.replicas, second.replicas) == (1, 1)
        assert (first.share_per_s, second.share_per_s) == (16.0, 4.0)
    finally:
        await first.stop()
        await second.stop()
