"""The baseline of `fold_ratio_vs_raw_read`: a bare nats-py ordered consumer over the whole stream.

`python -m bench.rawread NATS_URL COUNT [--decode]` reads FMCSA_EVENTS from sequence 1 with an ordered
(ack-none) push consumer, as the projector's `Feed` does, and prints `{"events", "seconds", "rate"}`.
With `--decode` each message also goes through `fmcsa_events.decoder.decode` (the same pydantic
decoding the fold starts with); without it the messages are only counted. Its own process, like the
rebuild it is compared with.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import nats
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from fmcsa_events.decoder import decode
from fmcsa_events.subjects import EVENTS_WILDCARD
from fmcsa_events.topology import EVENTS_STREAM


async def read(url: str, count: int, *, decoding: bool) -> dict[str, float]:
    nc = await nats.connect(url, name="bench-rawread")
    js = nc.jetstream()
    done = asyncio.Event()
    seen = 0

    async def on_message(msg: Msg) -> None:
        nonlocal seen
        if decoding:
            decode(msg.headers, msg.data)
        seen += 1
        if msg.metadata.sequence.stream >= count:
            done.set()

    began = time.monotonic()
    sub = await js.subscribe(
        EVENTS_WILDCARD,
        stream=EVENTS_STREAM,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        cb=on_message,
    )
    await asyncio.wait_for(done.wait(), timeout=600)
    seconds = time.monotonic() - began
    await sub.unsubscribe()
    await nc.drain()
    return {"events": seen, "seconds": round(seconds, 3), "rate": round(seen / seconds, 1)}


def main() -> int:
    url, count = sys.argv[1], int(sys.argv[2])
    print(json.dumps(asyncio.run(read(url, count, decoding="--decode" in sys.argv[3:]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
