"""Read the event stream from the start (or a sequence) up to its current end: replays, checks, tools.

Uses an ordered consumer (no server-side state, no acks), which is the fastest way to read a stream
in order, and stops at the last sequence that existed when the read began.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from fmcsa_events.decoder import Decoded, Undecodable, decode
from fmcsa_events.subjects import EVENTS_WILDCARD
from fmcsa_events.topology import EVENTS_STREAM


@dataclass(frozen=True, slots=True)
class Delivered:
    seq: int
    subject: str
    decoded: Decoded | Undecodable


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
    if start_time is not None:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start_time)
    else:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq)
    sub = await js.subscribe(subject, ordered_consumer=True, config=config, stream=stream)
    try:
        info = await sub.consumer_info()
        if info.num_pending == 0 and not (info.delivered and info.delivered.consumer_seq):
            return  # nothing matches the filter (a push consumer may already have delivered what did)
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_timeout_s)
            except NatsTimeout:
                return  # nothing more matches the filter up to `last`
            seq = msg.metadata.sequence.stream
            yield Delivered(seq, msg.subject, decode(msg.headers, msg.data))
            # num_pending counts what still matches the filter after this message
            if seq >= last or msg.metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()
