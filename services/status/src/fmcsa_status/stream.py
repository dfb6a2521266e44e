"""Reading FMCSA_EVENTS in stream order from a given sequence: a nats-py ordered consumer whose
messages are decoded as they arrive and handed out in batches.

The ordered consumer is ack-none and recreated by nats-py on any gap, so the feed delivers each
sequence once, in order, from `start_seq`. It keeps no checkpoint of its own: where to start is
always the projection's applied position + 1. When the folder falls behind, the callback waits for
room, which withholds flow-control replies and so slows the server down (bounded memory).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from fmcsa_events.decoder import Decoded, Undecodable, decode
from fmcsa_events.subjects import EVENTS_WILDCARD
from fmcsa_events.topology import EVENTS_STREAM


@dataclass(frozen=True, slots=True)
class Delivered:
    """One stream message: its sequence, what arrived, and what it decoded to."""

    seq: int
    subject: str
    headers: Mapping[str, str] | None
    data: bytes
    decoded: Decoded | Undecodable


class Feed:
    """Batches of `Delivered` from `start_seq` on; use as `async with Feed(js, start_seq) as feed`."""

    def __init__(self, js: JetStreamContext, start_seq: int, *, high_water: int = 4000) -> None:
        self._js = js
        self._start_seq = max(1, start_seq)
        self._high_water = high_water
        self._items: list[Delivered] = []
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._sub: Subscription | None = None
        self._want = _NEVER
        self._want_seq = _NEVER
        self.last_seq = start_seq - 1

    async def __aenter__(self) -> Feed:
        config = ConsumerConfig(opt_start_seq=self._start_seq) if self._start_seq > 1 else None
        self._sub = await self._js.subscribe(
            EVENTS_WILDCARD,
            stream=EVENTS_STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if self._start_seq > 1 else DeliverPolicy.ALL,
            config=config,
            cb=self._on_message,
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._room.set()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            # the connection may be closing; an ordered consumer is ephemeral and goes away with it
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= self.last_seq:
            return  # already handed out (an ordered consumer reset may resend)
        self.last_seq = seq
        headers = msg.headers
        self._items.append(Delivered(seq, msg.subject, headers, msg.data, decode(headers, msg.data)))
        # Wake the taker only when what it waits for is there, not on every message.
        if len(self._items) >= self._want or seq >= self._want_seq:
            self._arrived.set()
        if len(self._items) >= self._high_water:
            self._room.clear()
            await self._room.wait()

    async def take(
        self, max_items: int, wait_s: float, *, until: int | None = None, idle_s: float = 0.5
    ) -> list[Delivered]:
        """Up to `max_items` (none past sequence `until`), returned once that many are there, or
        `until` is reached, or `wait_s` after the first arrived; an empty list after `idle_s` idle.
        """
        if not self._items and not await self._wait(1, None, idle_s):
            return []
        if len(self._items) < max_items and (until is None or self._items[-1].seq < until):
            await self._wait(max_items, until, wait_s)
        count = min(max_items, len(self._items))
        if until is not None:
            count = min(count, bisect.bisect_right(self._items, until, key=_seq))
        batch, self._items = self._items[:count], self._items[count:]
        if len(self._items) < self._high_water:
            self._room.set()
        return batch

    async def _wait(self, count: int, until: int | None, timeout_s: float) -> bool:
        """Wait until `count` items are buffered or sequence `until` arrived; False on timeout."""
        self._want, self._want_seq = count, until if until is not None else _NEVER
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._want, self._want_seq = _NEVER, _NEVER


_NEVER = 2**63


def _seq(delivered: Delivered) -> int:
    return delivered.seq
