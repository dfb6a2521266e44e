"""Lag you can see: while the projector is stopped, events wait on the bus; once the oldest has waited over
a second the page's summary says how far behind the status is, and once the projector is back and has
caught up it says nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from fmcsa_embedded import Child
from fmcsa_events.bus import Bus
from fmcsa_events.lag import Lag, stream_lag
from fmcsa_events.models import CompanyRegistered
from fmcsa_events.topology import EVENTS_STREAM, Topology, declare
from fmcsa_runtime.tokens import Role


async def test_the_summary_shows_the_projector_lag_over_a_second_and_not_once_caught_up(
    gateway: Any, projector: Child, bearer: Any, wait_until: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    await gateway.publish_folded([CompanyRegistered(dot="1")], headers=viewer, wait_until=wait_until)
    assert 'id="projector-lag"' not in (await gateway.client.get("/ui/summary", headers=viewer)).text

    projector.stop(grace_s=10)
    nc = await nats.connect(gateway.nats_url)
    try:
        bus = Bus(nc.jetstream(), producer="test")
        for dot in ("2", "3", "4"):
            await bus.publish(CompanyRegistered(dot=dot))
        await asyncio.sleep(1.2)  # the oldest waiting event must be over a second old
        page = (await gateway.client.get("/ui/summary", headers=viewer)).text
        assert 'id="projector-lag"' in page
        assert "The status is 3 events behind the bus" in page

        projector.start()

        async def caught_up() -> bool:
            answer = await gateway.client.get("/ui/summary", headers=viewer)
            return 'id="projector-lag"' not in answer.text

        await wait_until(caught_up, what="the lag gone once the projector caught up", within_s=30)
    finally:
        await nc.close()


async def test_the_lag_is_the_events_after_a_position_and_the_age_of_the_first(fresh_nats_url: str) -> None:
    nc = await nats.connect(fresh_nats_url)
    try:
        js = nc.jetstream()
        await declare(js, Topology())
        bus = Bus(js, producer="test")
        first = (await bus.publish(CompanyRegistered(dot="11"))).seq
        last = (await bus.publish(CompanyRegistered(dot="12"))).seq
        stored = (await js.get_msg(EVENTS_STREAM, seq=first)).time
        assert stored is not None
        later = stored.astimezone(UTC) + timedelta(seconds=5)
        behind = await stream_lag(js, first - 1, now=later)
        assert behind.events == last - first + 1
        assert 4.9 <= behind.oldest_s <= 5.1
        assert await stream_lag(js, last, now=later) == Lag(0, 0.0)
        assert (await stream_lag(js, last - 1, now=datetime.now(UTC))).events == 1
    finally:
        await nc.close()
