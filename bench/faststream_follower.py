"""Whether a FastStream subscriber reads the stream as the ordered follower's consumers need (issue 23).

`python -m bench.faststream_follower [--events 100000] [--start 50001] [--stop-after 25000] [--rounds 2]`

A private nats-server from the wheel (scratch store) gets `--events` real events (`bench.projection
.generate`: registrations, sync requests and their outcomes, with their envelopes). Then each reader
reads from sequence `--start` to the stream's end, decoding every message with
`fmcsa_events.decoder.decode` (as the follower does), on one connection of its own:

- `follower`: `fmcsa_events.consume.OrderedFollower.take` in batches of 500 (the projector's size),
  then a second read that stops at `start + stop_after` (`take(until=...)`);
- `faststream_batch`: a FastStream `PullSub(batch=True)` subscriber over the same kind of consumer (an
  ephemeral ack-less pull consumer, `deliver_policy` by start sequence, `opt_start_seq`), batches of 500,
  on `fmcsa_runtime.broker.SharedConnectionBroker`;
- `faststream_push`: a FastStream ordered push subscriber from the same sequence (a handler per message).

For each: events/s, the most messages held on the client side at once (sampled every 2 ms: the
follower's buffer or the batch in hand, plus nats-py's pending queue of the subscription), whether the
reader knew it had caught up (the follower's `caught_up`; `num_pending == 0` in the last message's
metadata for FastStream), and, stopping at `start + stop_after`, how many messages past that sequence
reached the handler before the subscriber was stopped (the follower hands out none past `until`). A
FastStream reader that hands nothing new for `STALLED_S` is stopped, and the messages it never handed
to its handler are counted (`missing`). A last read starts `BATCH / 2` later, so that the stream's end
falls inside a batch. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy as FastStreamAck
from faststream.nats import JStream, NatsMessage, PullSub
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench.projection import generate, publish
from fmcsa_embedded import NatsServer
from fmcsa_events.consume import OrderedFollower
from fmcsa_events.decoder import decode
from fmcsa_events.subjects import EVENTS_WILDCARD
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_runtime.broker import SharedConnectionBroker

BATCH = 500
SAMPLE_S = 0.002
STALLED_S = 10.0
"""A FastStream reader that hands nothing new to its handler for this long has stalled: it lost messages."""


class Peak:
    """Samples `size()` every `SAMPLE_S` while running; `peak` is the largest value seen."""

    def __init__(self, size: Callable[[], int]) -> None:
        self.size = size
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.size())
            await asyncio.sleep(SAMPLE_S)  # the sampling period

    def __enter__(self) -> Peak:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def follower(url: str, start: int, last: int, *, until: int | None) -> dict[str, Any]:
    nc = await nats.connect(url, name="bench-follower")
    try:
        end = until if until is not None else last
        seen = 0
        began = time.monotonic()
        async with OrderedFollower(nc.jetstream(), start, batch=BATCH, name="bench") as reader:
            # the buffer the pump fills ahead of the taker, and what nats-py holds for the next fetch
            with Peak(lambda: len(reader._items) + (reader._sub.pending_msgs if reader._sub else 0)) as peak:
                while True:
                    items = await reader.take(BATCH, 0.05, until=until)
                    seen += len(items)
                    if items and items[-1].seq >= end:
                        break
            seconds = time.monotonic() - began
            caught_up = reader.caught_up
            beyond = sum(1 for item in reader._items if item.seq > end) if until is not None else 0
        return {
            "events": seen,
            "missing": end - start + 1 - seen,
            "seconds": round(seconds, 3),
            "rate": round(seen / seconds),
            "client_queue_peak": peak.peak,
            "knows_caught_up": caught_up,
            "handed_out_past_stop": 0,  # take(until=...) never returns a later sequence
            "fetched_past_stop_unused": beyond,
        }
    finally:
        await nc.drain()


async def _undecoded(message: StreamMessage[Any]) -> Any:
    return message.body  # the bodies go through fmcsa_events.decoder.decode in the handler, as above


async def faststream(url: str, start: int, last: int, *, until: int | None, push: bool) -> dict[str, Any]:
    """One FastStream subscriber from `start`; the handler decodes each message, counts it, and notes
    when it has passed `until` (or the end); the subscriber is stopped from outside at that moment.
    """
    nc = await nats.connect(url, name="bench-faststream", pending_size=64 * 1024**2)
    broker = SharedConnectionBroker(nc, name="bench", grace_s=5)
    end = until if until is not None else last
    state = {"seen": 0, "past": 0, "caught_up": False, "in_hand": 0}
    done = asyncio.Event()

    def account(msg: Msg) -> None:
        decode(msg.headers, msg.data)
        seq = msg.metadata.sequence.stream
        if seq > end:
            state["past"] += 1  # reached the handler although the reader wanted to stop before it
            return
        state["seen"] += 1
        if msg.metadata.num_pending == 0:
            state["caught_up"] = True
        if seq >= end:
            done.set()

    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=5.0,
        mem_storage=True,
        num_replicas=1,
    )
    stream = JStream(EVENTS_STREAM, declare=False)
    if push:
        sub = broker.subscriber(
            EVENTS_WILDCARD,
            stream=stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=start),
            ack_policy=FastStreamAck.MANUAL,
            decoder=_undecoded,
            persistent=False,
        )

        @sub
        async def on_message(message: NatsMessage) -> None:
            account(message.raw_message)

        def in_client() -> int:
            subscription = sub.subscription  # nats-py's push subscription: its pending queue
            return subscription.pending_msgs if subscription is not None else 0
    else:
        sub = broker.subscriber(
            EVENTS_WILDCARD,
            stream=stream,
            pull_sub=PullSub(batch_size=BATCH, timeout=0.05, batch=True),
            config=config,
            ack_policy=FastStreamAck.MANUAL,
            decoder=_undecoded,
            persistent=False,
        )

        @sub
        async def on_batch(message: NatsMessage) -> None:
            batch: list[Msg] = message.raw_message  # type: ignore[assignment]  # a batch message
            state["in_hand"] = len(batch)
            for msg in batch:
                account(msg)
            await asyncio.sleep(0)  # let the sampler see the batch in hand
            state["in_hand"] = 0

        def in_client() -> int:
            subscription = sub.subscription  # the batch in hand, and what nats-py holds for the next fetch
            return state["in_hand"] + (subscription.pending_msgs if subscription is not None else 0)

    try:
        await broker.start()
        began = time.monotonic()
        with Peak(in_client) as peak:
            await sub.start()
            progress, still_since, last_at = -1, time.monotonic(), began
            while not done.is_set() and time.monotonic() - still_since < STALLED_S:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout=0.5)
                if state["seen"] != progress:
                    progress, still_since, last_at = state["seen"], time.monotonic(), time.monotonic()
            seconds = last_at - began
            await asyncio.sleep(0.2)  # what the subscriber still delivers before it can be stopped
            await sub.stop()
        return {
            "events": state["seen"],
            "missing": end - start + 1 - state["seen"],  # never handed to the handler (not stalled: 0)
            "seconds": round(seconds, 3),
            "rate": round(state["seen"] / seconds),
            "client_queue_peak": peak.peak,
            "knows_caught_up": state["caught_up"],
            "handed_out_past_stop": state["past"],
        }
    finally:
        with contextlib.suppress(Exception):
            await broker.stop()
        await nc.drain()


async def run(events: int, start: int, stop_after: int, rounds: int) -> dict[str, Any]:
    logging.getLogger("faststream").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-faststream-") as scratch:
        server = NatsServer(store_dir=Path(scratch), sync_always=False).start()
        try:
            last = await publish(server.url, generate(events, max(1, events // 50)))
            assert last == events, (last, events)
            until = min(last, start + stop_after - 1)
            results: dict[str, Any] = {
                "events_in_stream": last,
                "read_from_seq": start,
                "stop_at_seq": until,
                "machine": f"{platform.machine()}, {platform.python_version()}",
            }
            readers = {
                "follower": lambda s, u: follower(server.url, s, last, until=u),
                "faststream_batch": lambda s, u: faststream(server.url, s, last, until=u, push=False),
                "faststream_push": lambda s, u: faststream(server.url, s, last, until=u, push=True),
            }
            await follower(server.url, start, min(last, start + 999), until=None)  # warm-up: imports, caches
            # from a sequence whose distance to the end is no multiple of the batch: the last batch is partial
            ragged = start + BATCH // 2
            results["ragged_from_seq"] = ragged
            for name in readers:
                results[name] = {"to_end": [], "stop_at": None, "to_end_last_batch_partial": None}
            for _ in range(rounds):  # alternating, so that a busy moment of the box hits each reader
                for name, read in readers.items():
                    results[name]["to_end"].append(await read(start, None))
            for name, read in readers.items():
                results[name]["stop_at"] = await read(start, until)
                results[name]["to_end_last_batch_partial"] = await read(ragged, None)
            return results
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faststream_follower", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--start", type=int, default=50_001)
    parser.add_argument("--stop-after", type=int, default=25_000)
    parser.add_argument("--rounds", type=int, default=2, help="reads to the end per reader")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.events, args.start, args.stop_after, args.rounds)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
