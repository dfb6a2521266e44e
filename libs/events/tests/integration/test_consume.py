"""The two stream readers against a real NATS: the ordered follower and the durable worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from fmcsa_events.bus import Bus
from fmcsa_events.consume import INACTIVE_THRESHOLD_S, DurableWorker, OrderedFollower, Pulled
from fmcsa_events.decoder import Decoded
from fmcsa_events.models import CompanyRegistered
from fmcsa_events.reader import read_stream
from fmcsa_events.topology import EVENTS_STREAM, Topology, declare

REGISTERED = "fmcsa.evt.company_registered.>"


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


async def registered(nc: Client, dots: range) -> None:
    await Bus(nc.jetstream(), producer="test").publish_many([CompanyRegistered(dot=str(n)) for n in dots])


async def test_the_follower_hands_out_bounded_batches_in_order_from_a_sequence(nc: Client) -> None:
    await registered(nc, range(1, 31))
    async with OrderedFollower(nc.jetstream(), 11, high_water=8) as follower:
        first = await follower.take(8, 1.0)
        assert [d.seq for d in first] == list(range(11, 19))
        assert isinstance(first[0].decoded, Decoded)
        assert first[0].decoded.event == CompanyRegistered(dot="11")
        up_to = await follower.take(100, 1.0, until=25)
        assert up_to[-1].seq <= 25  # never past `until`
        rest: list[int] = [d.seq for d in up_to]
        while not follower.caught_up:
            rest += [d.seq for d in await follower.take(100, 0.1)]
        assert rest == list(range(19, 31))
        assert await follower.take(100, 0.1, idle_s=0.1) == []  # idle: an empty batch


async def test_the_follower_stays_live_and_filters_on_several_subjects(nc: Client) -> None:
    await registered(nc, range(1, 6))
    subjects = ["fmcsa.evt.company_registered.2", "fmcsa.evt.company_registered.7"]
    async with OrderedFollower(nc.jetstream(), 1, subjects=subjects) as follower:
        assert [d.seq for d in await follower.take(10, 0.2)] == [2]
        assert follower.caught_up
        await registered(nc, range(6, 9))  # 7 arrives while the follower waits
        live = await follower.take(10, 0.2, idle_s=5.0)
        assert [d.subject for d in live] == ["fmcsa.evt.company_registered.7"]


async def test_a_follower_on_a_subject_nothing_matches_is_caught_up_at_once(nc: Client) -> None:
    await registered(nc, range(1, 4))
    async with OrderedFollower(nc.jetstream(), subjects="fmcsa.evt.source_failed.>") as follower:
        assert follower.caught_up


async def test_one_shot_reads_leave_no_consumer_behind_for_long(nc: Client, wait_until: Any) -> None:
    """Every `read_stream` makes an ephemeral consumer no service may delete: the server drops it once it
    has gone INACTIVE_THRESHOLD_S without a fetch. At 60 s, a caller polling read_stream piled up
    consumers until the server refused more (`maximum consumers limit reached`, seen in CI)."""
    js = nc.jetstream()
    await registered(nc, range(1, 4))
    before = (await js.stream_info(EVENTS_STREAM)).state.consumer_count
    for _ in range(20):
        assert len([d async for d in read_stream(js)]) == 3
    assert (await js.stream_info(EVENTS_STREAM)).state.consumer_count > before  # they linger a little

    async def dropped() -> bool:
        return (await js.stream_info(EVENTS_STREAM)).state.consumer_count == before

    await wait_until(dropped, what="the one-shot consumers dropped", within_s=INACTIVE_THRESHOLD_S + 10)


async def test_a_slow_message_holds_only_its_own_slot(nc: Client, wait_until: Any) -> None:
    """Two slots, one message held: every other message is handled meanwhile (fetch only free slots)."""
    release = asyncio.Event()
    done: list[str] = []

    async def handle(msg: Pulled) -> None:
        dot = msg.raw_message.subject.rsplit(".", 1)[-1]
        if dot == "1":
            await release.wait()
        done.append(dot)
        await msg.ack()

    js = nc.jetstream()
    await js.add_consumer(EVENTS_STREAM, durable_name="test-worker", filter_subject=REGISTERED, ack_wait=30)
    worker = DurableWorker(js=js, durable="test-worker", handle=handle, concurrency=2, fetch_wait_s=0.2)
    await worker.start()
    try:
        await registered(nc, range(1, 11))

        async def nine_done() -> bool:
            return len(done) == 9

        await wait_until(nine_done, what="nine messages handled beside the held one")
        assert "1" not in done
        assert worker.in_flight == 1
        release.set()

        async def all_done() -> bool:
            return len(done) == 10

        await wait_until(all_done, what="the held message handled")
    finally:
        await worker.stop(budget_s=1.0)


async def test_stop_hands_back_at_once_and_heartbeats_keep_a_long_handler(
    nc: Client, wait_until: Any
) -> None:
    """A handler running past the ack wait keeps its message (in-progress acks); a stop past the budget
    naks it, so it is redelivered at once instead of after the ack wait."""
    js = nc.jetstream()
    await js.add_consumer(EVENTS_STREAM, durable_name="test-stop", filter_subject=REGISTERED, ack_wait=1)
    deliveries: list[int] = []
    hang = asyncio.Event()

    async def handle(msg: Pulled) -> None:
        deliveries.append(msg.raw_message.metadata.num_delivered or 0)
        await hang.wait()

    worker = DurableWorker(
        js=js, durable="test-stop", handle=handle, concurrency=1, heartbeat_s=0.2, fetch_wait_s=0.2
    )
    await worker.start()
    await registered(nc, range(1, 2))

    async def started() -> bool:
        return len(deliveries) == 1

    await wait_until(started, what="the message in flight")
    await asyncio.sleep(2.5)  # the premise: past twice the ack wait, redelivered without heartbeats
    assert deliveries == [1]
    await worker.stop(budget_s=0.1)
    second: list[int] = []

    async def take(msg: Pulled) -> None:
        second.append(msg.raw_message.metadata.num_delivered or 0)
        await msg.ack()

    again = DurableWorker(js=js, durable="test-stop", handle=take, concurrency=1, fetch_wait_s=0.2)
    await again.start()
    try:

        async def redelivered() -> bool:
            return second == [2]

        await wait_until(redelivered, what="the handed-back message redelivered", within_s=0.9)
    finally:
        await again.stop(budget_s=1.0)
