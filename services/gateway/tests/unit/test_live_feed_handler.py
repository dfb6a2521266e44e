"""The live feed's FastStream handler in memory (`faststream.nats.TestNatsBroker`): what reaches the
pages' subscriptions, in which order, and when; no NATS server.

A JetStream delivery carries its stream sequence in its reply subject (`$JS.ACK.<stream>.<consumer>.
<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`); the tests publish with such a reply, as the
server delivers. The same feed on a real nats-server, through a broker restart, is
`tests/integration/test_events_stream.py` and R2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_gateway.live import Change, LiveFeed


def delivered_as(seq: int) -> str:
    """The reply subject JetStream gives the message at stream sequence `seq` (nats-py reads metadata
    from it)."""
    return f"$JS.ACK.{EVENTS_STREAM}.gateway-feed.1.{seq}.{seq}.1765000000000000000.0"


class View:
    """The status view's applied position, as the test sets it."""

    def __init__(self) -> None:
        self.position = 0

    async def applied(self) -> int:
        return self.position


@pytest.fixture
async def running() -> AsyncIterator[tuple[LiveFeed, NatsBroker, View, list[Change]]]:
    broker = NatsBroker()
    view = View()
    seen_at_once: list[Change] = []
    feed = LiveFeed(
        broker,  # type: ignore[arg-type]  # the feed needs only the NatsBroker part of its broker
        applied=view.applied,
        view_wait_s=3600,  # never released by age here: only by the view's position
        poll_s=0.001,
        on_change=seen_at_once.append,
    )
    async with TestNatsBroker(broker) as test_broker:
        await feed.start()
        try:
            yield feed, test_broker, view, seen_at_once
        finally:
            await feed.stop()


async def publish(broker: NatsBroker, subject: str, seq: int, body: bytes = b"{}") -> None:
    await broker.publish(body, subject, stream=EVENTS_STREAM, reply_to=delivered_as(seq))


async def test_each_event_becomes_a_change_after_the_view_applied_its_sequence(
    running: tuple[LiveFeed, NatsBroker, View, list[Change]],
) -> None:
    feed, broker, view, seen_at_once = running
    async with feed.subscribe() as page:
        await publish(broker, "fmcsa.evt.source_synced.csa.1234567", 7)
        await publish(broker, "fmcsa.evt.company_registered.42", 8)
        expected = [
            Change(type="source_synced", seq=7, dot="1234567", source="csa"),
            Change(type="company_registered", seq=8, dot="42", source=None),
        ]
        assert seen_at_once == expected  # the handler's listener is told at once
        assert feed.last_seq == 8
        assert [change for _, change in feed._pending] == expected  # held: the view is at 0
        view.position = 7
        assert await page.next(timeout_s=10) == expected[0]
        view.position = 8
        assert await page.next(timeout_s=10) == expected[1]


async def test_a_poison_body_costs_nothing_the_subject_and_sequence_are_the_change(
    running: tuple[LiveFeed, NatsBroker, View, list[Change]],
) -> None:
    feed, broker, view, seen_at_once = running
    view.position = 100
    async with feed.subscribe() as page:
        await publish(broker, "fmcsa.evt.source_failed.authority.9", 11, body=b"\xff\x00 not json {")
        await publish(broker, "fmcsa.evt.schedule_changed.csa", 12, body=b"")
        assert await page.next(timeout_s=10) == Change("source_failed", 11, dot="9", source="authority")
        assert await page.next(timeout_s=10) == Change("schedule_changed", 12, dot=None, source="csa")
    assert [c.seq for c in seen_at_once] == [11, 12]


async def test_every_page_gets_every_change_in_stream_order(
    running: tuple[LiveFeed, NatsBroker, View, list[Change]],
) -> None:
    feed, broker, view, _ = running
    view.position = 1000
    async with feed.subscribe() as first, feed.subscribe() as second:
        assert feed.subscribers == 2
        for seq in range(20, 25):
            await publish(broker, f"fmcsa.evt.sync_requested.csa.{seq}", seq)
        for page in (first, second):
            got = [await page.next(timeout_s=10) for _ in range(5)]
            assert [c.seq for c in got if c is not None] == [20, 21, 22, 23, 24]
    assert feed.subscribers == 0
