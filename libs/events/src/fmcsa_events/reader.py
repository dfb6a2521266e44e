"""Read the event stream from the start (or a sequence, or a moment) up to its current end: replays,
checks, backtests, tools. A one-shot use of `fmcsa_events.consume.OrderedFollower` that stops at the last
sequence that existed when the read began, or sooner once nothing more matches the subject.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from nats.js import JetStreamContext

from fmcsa_events.consume import Delivered, OrderedFollower
from fmcsa_events.subjects import EVENTS_WILDCARD
from fmcsa_events.topology import EVENTS_STREAM

__all__ = ["Delivered", "read_stream"]

BATCH = 500


async def read_stream(
    js: JetStreamContext,
    *,
    subject: str = EVENTS_WILDCARD,
    start_seq: int = 1,
    stream: str = EVENTS_STREAM,
    idle_timeout_s: float = 5.0,
    start_time: datetime | None = None,
) -> AsyncIterator[Delivered]:
    """Yield every message on `subject` from `start_seq` (or, given `start_time`, from the first message
    stored at or after that moment) to the stream's last sequence at call time.
    """
    last = (await js.stream_info(stream)).state.last_seq
    if last < start_seq:
        return
    async with OrderedFollower(
        js, start_seq, subjects=subject, stream=stream, start_time=start_time, high_water=4 * BATCH
    ) as follower:
        while not follower.caught_up:
            batch = await follower.take(BATCH, 0.0, until=last, idle_s=idle_timeout_s)
            if not batch:
                return  # nothing more matches the subject up to `last`
            for item in batch:
                yield item
            if batch[-1].seq >= last:
                return
