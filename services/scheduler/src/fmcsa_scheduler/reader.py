"""Read a filtered slice of the event stream in order, in bounded batches, for as long as the process runs.

An ordered push consumer would do, but the server pushes history faster than a fold consumes it and the
client buffers all of it (about 50 MB for 100,000 registrations). This reader pulls at most `batch`
messages at a time from an ephemeral, ack-less pull consumer instead, and if the server loses that
consumer (a restart, a long disconnect) it makes a new one that starts at the next unread sequence.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from fmcsa_events.topology import EVENTS_STREAM

log = structlog.get_logger(__name__)


_CHECK_AFTER_IDLE = 10  # empty fetches in a row before asking the server whether the consumer still exists


class StreamReader:
    """Messages on `filters` from stream sequence `start_seq` on, in order, each once."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        name: str,
        filters: list[str],
        start_seq: int,
        batch: int = 500,
        idle_s: float = 1.0,
    ) -> None:
        self._js = js
        self._name = name
        self._filters = filters
        self._next_seq = start_seq
        self._batch = batch
        self._idle_s = idle_s
        self._sub: JetStreamContext.PullSubscription | None = None
        self._idle = 0
        self.pending: int | None = None  # messages left after the last batch (None: not known yet)

    @property
    def caught_up(self) -> bool:
        return self.pending == 0

    async def next_batch(self) -> list[Msg]:
        """The next messages in stream order; an empty list when none came within `idle_s`."""
        try:
            if self._sub is None:
                await self._open()
                assert self._sub is not None
            try:
                messages = await self._sub.fetch(self._batch, timeout=self._idle_s)
            except TimeoutError:  # nothing new (nats-py raises asyncio's and its own TimeoutError)
                self.pending, self._idle = 0, self._idle + 1
                if self._idle % _CHECK_AFTER_IDLE == 0:
                    await self._sub.consumer_info()  # NotFoundError if the server lost it
                return []
        except (NatsError, TimeoutError) as error:
            # The consumer or the connection went away: start again from the next unread message.
            log.warning(
                "stream_reader_reopening", reader=self._name, next_seq=self._next_seq, error=repr(error)
            )
            await self.close()
            await asyncio.sleep(self._idle_s)
            return []
        self._idle = 0
        if messages:
            last = messages[-1].metadata
            self._next_seq = last.sequence.stream + 1
            self.pending = last.num_pending
        return messages

    async def close(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            # the server drops the ack-less ephemeral consumer by itself once it is idle
            with contextlib.suppress(NatsError, TimeoutError):
                await sub.unsubscribe()

    async def _open(self) -> None:
        config = ConsumerConfig(
            filter_subjects=self._filters,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._next_seq,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            mem_storage=True,
            num_replicas=1,
        )
        self._sub = await self._js.pull_subscribe(self._filters[0], stream=EVENTS_STREAM, config=config)
        self.pending = (await self._sub.consumer_info()).num_pending
