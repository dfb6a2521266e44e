import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from fmcsa_embedded import NatsServer
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CompanyRegistered, SyncRequested, Trigger
from fmcsa_events.topology import (
    DLQ_STREAM,
    EVENTS_STREAM,
    INFLIGHT_BUCKET,
    Topology,
    TopologyMismatch,
    declare,
    source_durable,
)

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    yield client
    await client.drain()


async def test_declare_is_idempotent_and_creates_everything(nc: Client) -> None:
    js = nc.jetstream()
    topology = Topology()
    await declare(js, topology)
    await declare(js, topology)
    events = await js.stream_info(EVENTS_STREAM)
    assert events.config.retention == RetentionPolicy.LIMITS
    assert events.config.deny_delete
    assert events.config.deny_purge
    assert events.config.max_age == 0
    assert (await js.stream_info(DLQ_STREAM)).config.subjects == ["fmcsa.dlq.>"]
    for source in SourceKey:
        info = await js.consumer_info(EVENTS_STREAM, source_durable(source))
        assert info.config.filter_subject == f"fmcsa.evt.sync_requested.{source}.*"
        assert info.config.max_deliver == topology.source_max_deliver
    assert (await (await js.key_value(INFLIGHT_BUCKET)).status()).ttl == topology.inflight_ttl_s


async def test_declare_reconciles_editable_settings(nc: Client) -> None:
    js = nc.jetstream()
    await declare(js, Topology())
    await declare(
        js, replace(Topology(), source_max_deliver=7, duplicate_window_s=120.0, inflight_ttl_s=600.0)
    )
    assert (await js.consumer_info(EVENTS_STREAM, "source-csa")).config.max_deliver == 7
    assert (await js.stream_info(EVENTS_STREAM)).config.duplicate_window == 120.0
    assert (await (await js.key_value(INFLIGHT_BUCKET)).status()).ttl == 600.0


async def test_declare_fails_loudly_when_an_immutable_setting_differs(nc: Client) -> None:
    js = nc.jetstream()
    await js.add_stream(
        config=StreamConfig(name=EVENTS_STREAM, subjects=["fmcsa.evt.>"], storage=StorageType.MEMORY)
    )
    with pytest.raises(TopologyMismatch, match="storage"):
        await declare(js, Topology())


async def test_publish_sets_the_event_id_and_the_server_drops_a_repeat(nc: Client) -> None:
    js = nc.jetstream()
    await declare(js, Topology())
    bus = Bus(js, producer="test", clock=lambda: NOW)
    request = SyncRequested(
        request_id=uuid4(),
        dot="2847193",
        source="csa",
        trigger=Trigger.SCHEDULED,
        requested_at=NOW,
        deadline=NOW + timedelta(minutes=30),
        slot=NOW,
    )
    first = await bus.publish(request)
    again = await bus.publish(
        request.model_copy(update={"request_id": uuid4()})
    )  # same slot, another replica
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq
    stored = await js.get_msg(EVENTS_STREAM, first.seq)
    decoded = decode(stored.headers, stored.data or b"")
    assert isinstance(decoded, Decoded)
    assert decoded.event == request
    assert decoded.envelope.event_id == "csa:2847193:20261123T0600Z"


async def test_publish_many_keeps_order_and_stores_every_event(nc: Client) -> None:
    js = nc.jetstream()
    await declare(js, Topology())
    bus = Bus(js, producer="test")
    results = await bus.publish_many([CompanyRegistered(dot=str(n)) for n in range(1, 501)], in_flight=64)
    assert len({r.seq for r in results}) == 500
    assert (await js.stream_info(EVENTS_STREAM)).state.messages == 500


def _until_stopped(pid: int) -> None:
    """Wait until every thread of `pid` has stopped. A signal is delivered when the process next runs:
    on a loaded machine a server sent SIGSTOP answered one more publish first (CI, stop 30)."""
    tasks = Path(f"/proc/{pid}/task")
    for _ in range(500):
        states = {stat.read_text().rsplit(")", 1)[1].split()[0] for stat in tasks.glob("*/stat")}
        if states == {"T"}:
            return
        time.sleep(0.01)  # poll interval: /proc has no wait for a state change
    raise AssertionError(f"process {pid} did not stop within 5 s of SIGSTOP")


async def test_publish_many_tries_a_late_ack_again_and_the_stream_keeps_one_copy(
    nats_server: NatsServer, nc: Client
) -> None:
    """The server stops answering for longer than the bus's PubAck timeout (a loaded server): each event
    is published again with its own id, and the stream holds each once (the repeats are duplicates)."""
    js = nc.jetstream()
    await declare(js, Topology())
    bus = Bus(js, producer="test", timeout_s=0.5)
    assert nats_server.process is not None
    nats_server.process.send_signal(signal.SIGSTOP)
    _until_stopped(nats_server.process.pid)  # nothing of the test's runs on the loop meanwhile
    try:
        publishing = asyncio.create_task(bus.publish_many([CompanyRegistered(dot=str(n)) for n in (1, 2, 3)]))
        await asyncio.sleep(0.8)  # past the first try's timeout: without a second try publish_many raises
        assert not publishing.done()
    finally:
        nats_server.process.send_signal(signal.SIGCONT)
    results = await asyncio.wait_for(publishing, timeout=10)
    assert all(r.duplicate for r in results)  # each answer is to a second try, of an id already stored
    assert len({r.seq for r in results}) == 3
    assert (await js.stream_info(EVENTS_STREAM)).state.messages == 3


async def test_read_stream_returns_what_matches_up_to_the_end_without_waiting(nc: Client) -> None:
    import time

    from fmcsa_events.reader import read_stream

    js = nc.jetstream()
    await declare(js, Topology())
    bus = Bus(js, producer="test")
    await bus.publish_many([CompanyRegistered(dot=str(n)) for n in range(1, 51)])
    started = time.monotonic()
    everything = [d async for d in read_stream(js)]
    assert [d.seq for d in everything] == list(range(1, 51))
    one = [d async for d in read_stream(js, subject="fmcsa.evt.company_registered.7")]
    assert [d.seq for d in one] == [7]
    none = [d async for d in read_stream(js, subject="fmcsa.evt.source_failed.>")]
    assert none == []
    assert [d.seq for d in [d async for d in read_stream(js, start_seq=49)]] == [49, 50]
    assert time.monotonic() - started < 4, "a filtered read must not wait for an idle timeout"


async def test_publish_saved_publishes_a_stored_event_again_as_it_was_and_the_server_drops_it(
    nc: Client,
) -> None:
    js = nc.jetstream()
    await declare(js, Topology())
    bus = Bus(js, producer="test")
    first = await bus.publish(CompanyRegistered(dot="7"))
    stored = await js.get_msg(EVENTS_STREAM, first.seq)
    assert stored.headers is not None
    assert stored.data is not None
    again = await bus.publish_saved(stored.subject or "", stored.data, stored.headers)
    assert (again.seq, again.duplicate) == (first.seq, True)
    assert again.envelope == first.envelope
    assert (await js.stream_info(EVENTS_STREAM)).state.messages == 1
