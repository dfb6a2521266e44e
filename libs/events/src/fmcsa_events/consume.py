"""The two ways a service reads the event stream; every reader in the repository is one of them.

`OrderedFollower` — in stream order from a sequence (or a time), each message once, no acks, no
server-side state: an ephemeral ack-less pull consumer that a task of its own fetches in bounded batches,
never more than `high_water` ahead of the taker, decoding each message as it arrives; `take` hands them
out live or up to a given sequence, and `caught_up` says when everything stored so far was handed out.
Where to start is always the caller's own position + 1 (the projector's applied position, the
scheduler's checkpoint, 1 for a rebuild). Used by the status projector, the status rebuild, the
scheduler's two folds and `fmcsa_events.reader.read_stream`. (Read speed, 50,000 registrations on one
loaded box, decoded: 4.1 and 4.5 s through the follower, 3.2 and 6.3 s through a bare ordered push
consumer, which also let nats-py queue nearly the whole stream.)

`DurableWorker` — a durable pull consumer (replicas share it), each message its own task, at most
`concurrency` at once: it fetches only as many messages as there are free slots, so a slow message
holds only its own slot and nothing is fetched to wait behind others (its ack wait runs only while it
is worked on). While a handler runs, an in-progress ack every `heartbeat_s` keeps the message. The
handler settles its message (ack, delayed nak, term) through `Pulled`; one that raises leaves it unacked
(redelivered after the ack wait). `stop` ends intake, lets running handlers finish within its budget,
then cancels the rest and hands them back with a nak at once. Used by the source services and the
notifier.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import nats.errors
import stamina
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from fmcsa_events.decoder import Decoded, Undecodable, decode
from fmcsa_events.subjects import EVENTS_WILDCARD
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_events.wire import fast_headers, stream_position

log = structlog.get_logger(__name__)


INACTIVE_THRESHOLD_S = 5.0
"""Seconds an ephemeral follower consumer lives on the server without a fetch."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """One stream message: its sequence, what arrived, and what it decoded to."""

    seq: int
    subject: str
    headers: Mapping[str, str] | None
    data: bytes
    decoded: Decoded | Undecodable


_NEVER = 2**63
_LOST_AFTER_S = 5.0  # a pull request unanswered this long after its expiry: the consumer is gone
_STATUS, _DESCRIPTION, _CONFLICT = "Status", "Description", "409"


class _PullRequest:
    """The follower's one pull request in flight: how many messages it asked for and got."""

    __slots__ = ("conflict", "done", "received", "wanted")

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.received = 0
        self.conflict: str | None = None
        self.done = asyncio.Event()


_CHECK_AFTER_IDLE = 10  # empty fetches in a row before asking whether the consumer still exists


def _seq(delivered: Delivered) -> int:
    return delivered.seq


class OrderedFollower:
    """Batches of `Delivered` on `subjects` from `start_seq` (or the first message stored at or after
    `start_time`) on; use as `async with OrderedFollower(js, start_seq) as follower`.

    Underneath: an ephemeral, ack-less pull consumer, fetched by one task of its own (one pull request
    of at most `batch` messages at a time, its messages handed to a callback as they arrive) and never
    more than `high_water` ahead of the taker (an ordered push consumer
    would let the server push the whole history into the client: measured, 98,000 of 100,000
    registrations queued in nats-py while the taker held 2,000). If the server loses the consumer (a
    restart, a long disconnect) a new one starts at the next unread sequence.
    """

    def __init__(
        self,
        js: JetStreamContext,
        start_seq: int = 1,
        *,
        subjects: str | Sequence[str] = EVENTS_WILDCARD,
        stream: str = EVENTS_STREAM,
        start_time: datetime | None = None,
        batch: int = 500,
        high_water: int = 4000,
        fetch_wait_s: float = 1.0,
        name: str = "follower",
    ) -> None:
        self._js = js
        self._next_seq = max(1, start_seq)
        self._subjects = [subjects] if isinstance(subjects, str) else list(subjects)
        self._stream = stream
        self._start_time = start_time
        self._batch = max(1, min(batch, high_water))
        self._high_water = max(1, high_water)
        self._fetch_wait_s = fetch_wait_s
        self._name = name
        self._items: list[Delivered] = []
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._sub: Subscription | None = None
        self._consumer = ""
        self._next_subject = ""
        self._request: _PullRequest | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        self._want = _NEVER
        self._want_seq = _NEVER
        self._pending: int | None = None
        self.last_seq = self._next_seq - 1

    @property
    def caught_up(self) -> bool:
        """Everything on the subjects stored so far was handed out (as of the last fetch)."""
        return not self._items and self._pending == 0

    async def __aenter__(self) -> OrderedFollower:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the consumer (errors reach the caller) and start fetching."""
        await self._subscribe()
        self._pump = asyncio.create_task(self._fetch_loop(), name=f"follow:{self._name}")

    async def close(self) -> None:
        self._closing = True
        try:
            if self._pump is not None:
                pump, self._pump = self._pump, None
                # the flag ends the loop at its next turn should the cancel be lost (Python 3.11's
                # wait_for drops one that lands as its wait completes: seen as a close that took 20 s)
                self._room.set()
                pump.cancel()
                await asyncio.wait({pump})
        finally:
            await self._unsubscribe()

    async def _subscribe(self) -> None:
        if self._start_time is not None and self.last_seq < 1:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=self._start_time
            )
        else:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._next_seq
            )
        config.ack_policy = AckPolicy.NONE
        # the server drops it by itself once nobody fetches (the follower cannot delete it: no service may
        # delete a consumer). Short, because every one-shot `read_stream` makes one: at 60 s a caller
        # polling read_stream piled up consumers until the server refused more (err 10026, seen in CI). A
        # follower idle longer than this (a taker stalled) gets a new consumer at the next unread sequence.
        config.inactive_threshold = INACTIVE_THRESHOLD_S
        config.mem_storage = True
        config.num_replicas = 1
        if len(self._subjects) > 1:
            config.filter_subjects = self._subjects
        else:
            config.filter_subject = self._subjects[0]
        nc = self._js._nc
        fast_headers(nc)  # the same headers, parsed in a third of nats-py's time (`fmcsa_events.wire`)
        config.name = nc._nuid.next().decode()
        info = await self._js.add_consumer(self._stream, config=config)
        self._consumer = info.name
        self._pending = info.num_pending
        self._next_subject = f"{self._js._prefix}.CONSUMER.MSG.NEXT.{self._stream}.{info.name}"
        self._sub = await nc.subscribe(nc.new_inbox(), cb=self._on_message)

    async def _unsubscribe(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            # the connection may be closing; the ack-less ephemeral consumer goes away by itself
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _fetch_loop(self) -> None:
        """One pull request at a time for at most the room left below `high_water`; its messages go
        straight to `_add` as they arrive (nats-py's `fetch` awaits each message with a timer of its
        own, and once the taker held the loop past the fetch's deadline it returned one message per
        request: measured, 96,008 requests for 100,000 messages in a rebuild on a loaded box).
        """
        idle = 0
        wait_ns = int(self._fetch_wait_s * 1e9)
        while not self._closing:
            await self._room.wait()
            if self._closing:
                return
            try:
                if self._sub is None:
                    await self._subscribe()
                    assert self._sub is not None
                room = self._high_water - len(self._items)
                request = self._request = _PullRequest(max(1, min(self._batch, room)))
                body = json.dumps({"batch": request.wanted, "expires": wait_ns}).encode()
                await self._js._nc.publish(self._next_subject, body, reply=self._sub.subject)
                try:
                    # the server answers within `expires` (the batch, or 408 for what is missing); a
                    # request unanswered well past that means the consumer or the connection went away
                    await asyncio.wait_for(request.done.wait(), self._fetch_wait_s + _LOST_AFTER_S)
                except TimeoutError:
                    raise nats.errors.TimeoutError from None
                if request.conflict is not None:
                    raise nats.errors.Error(f"pull request refused: {request.conflict}")
                if request.received == 0:  # nothing new within `fetch_wait_s`
                    self._pending, idle = 0, idle + 1
                    if idle % _CHECK_AFTER_IDLE == 0:
                        await self._js.consumer_info(self._stream, self._consumer)  # NotFoundError if lost
                    continue
            except (nats.errors.Error, TimeoutError) as error:
                # The consumer or the connection went away: start again from the next unread message.
                log.warning(
                    "follower_reopening", follower=self._name, next_seq=self._next_seq, error=repr(error)
                )
                if self._closing:
                    return
                await self._unsubscribe()
                await asyncio.sleep(self._fetch_wait_s)
                continue
            idle = 0

    async def _on_message(self, msg: Msg) -> None:
        request = self._request
        headers = msg.headers
        status = headers.get(_STATUS) if headers and not msg.reply else None
        if status is not None:  # the end of a pull request: 408 (expired), 404, 409 (refused)
            if status == _CONFLICT and request is not None:
                request.conflict = headers.get(_DESCRIPTION, status) if headers else status
            if request is not None:
                request.done.set()
            return
        self._add(msg)
        if request is not None:
            request.received += 1
            if request.received >= request.wanted:
                request.done.set()

    def _add(self, msg: Msg) -> None:
        seq, pending = stream_position(msg)
        if seq <= self.last_seq:
            return  # already handed out
        self.last_seq, self._next_seq = seq, seq + 1
        self._pending = pending  # what still matches the subjects after this one
        headers = msg.headers
        self._items.append(Delivered(seq, msg.subject, headers, msg.data, decode(headers, msg.data)))
        # Wake the taker only when what it waits for is there, not on every message.
        if len(self._items) >= self._want or seq >= self._want_seq:
            self._arrived.set()
        if len(self._items) >= self._high_water:
            self._room.clear()

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


class Pulled:
    """One message fetched from a durable consumer; each acknowledgement is sent at most once.

    The body is left untouched (`raw_message`): the handler decodes it (or dead-letters it) itself.
    FastStream's `NatsMessage` has the same shape, so a handler written for one takes the other.
    """

    __slots__ = ("raw_message",)

    def __init__(self, raw_message: Msg) -> None:
        self.raw_message = raw_message

    @property
    def settled(self) -> bool:
        return bool(self.raw_message._ackd)

    async def ack(self) -> None:
        if not self.settled:
            await self.raw_message.ack()

    async def nack(self, delay: float | None = None) -> None:
        if not self.settled:
            await self.raw_message.nak(delay=delay)

    async def reject(self) -> None:
        if not self.settled:
            await self.raw_message.term()

    async def in_progress(self) -> None:
        if not self.settled:
            await self.raw_message.in_progress()


FETCH_WAIT_S = 1.0
"""How long one pull request waits for messages; a stop waits at most about this long for the pull loop."""
PULL_WAIT_INITIAL_S = 0.1
PULL_WAIT_MAX_S = 2.0
"""Back-off between failed pulls of the consumer: 0.1 s doubling up to 2 s."""


class DurableWorker:
    """Keeps up to `concurrency` messages of one durable pull consumer in flight, each in its own task
    (see the module docstring): one fetch asks for the free slots, at most `batch`. `on_in_flight` is
    told the count whenever it changes (a gauge).
    """

    def __init__(
        self,
        *,
        js: JetStreamContext,
        durable: str,
        handle: Callable[[Pulled], Coroutine[Any, Any, None]],
        concurrency: int,
        batch: int | None = None,
        heartbeat_s: float | None = None,
        stream: str = EVENTS_STREAM,
        fetch_wait_s: float = FETCH_WAIT_S,
        on_in_flight: Callable[[int], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._js = js
        self._stream = stream
        self._durable = durable
        self._handle = handle
        self._concurrency = concurrency
        self._batch = batch or concurrency
        self._heartbeat_s = heartbeat_s
        self._fetch_wait_s = fetch_wait_s
        self._on_in_flight = on_in_flight
        self._in_flight: dict[asyncio.Task[None], Pulled] = {}
        self._slot_free = asyncio.Event()
        self._slot_free.set()
        self._stopping = False
        self._sub: JetStreamContext.PullSubscription | None = None
        self._pull_task: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def running(self) -> bool:
        return self._pull_task is not None and not self._pull_task.done()

    async def start(self) -> None:
        self._sub = await self._js.pull_subscribe_bind(durable=self._durable, stream=self._stream)
        self._pull_task = asyncio.create_task(self._pull(self._sub), name=f"pull:{self._durable}")
        self._pull_task.add_done_callback(self._pull_ended)

    def _pull_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:  # a bug: /ready turns 503
            log.error(
                "pull_loop_failed",
                durable=self._durable,
                error=f"{type(error).__name__}: {error}",
                exc_info=error,
            )

    async def _pull(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping:
            await self._slot_free.wait()
            free = self._concurrency - len(self._in_flight)
            if self._stopping or free < 1:
                continue
            for raw in await self._fetch(sub, min(free, self._batch)):
                msg = Pulled(raw)
                if self._stopping:  # fetched as the stop began: hand it back rather than start it
                    await self._hand_back(msg)
                else:
                    self._spawn(msg)

    async def _fetch(self, sub: JetStreamContext.PullSubscription, free: int) -> list[Msg]:
        """Up to `free` messages, or none when nothing came within the wait. Any other failure (a
        reconnect, a leader election, a closed connection) is retried by stamina, forever, with
        back-off from `PULL_WAIT_INITIAL_S` up to `PULL_WAIT_MAX_S`: one `stamina.retry_scheduled`
        line per failure.
        """
        with structlog.contextvars.bound_contextvars(retrying="pull", durable=self._durable):
            async for attempt in stamina.retry_context(
                on=Exception,
                attempts=None,
                timeout=None,
                wait_initial=PULL_WAIT_INITIAL_S,
                wait_max=PULL_WAIT_MAX_S,
                wait_jitter=0.0,
            ):
                with attempt:
                    try:
                        return await sub.fetch(free, timeout=self._fetch_wait_s)
                    except TimeoutError:  # nats-py raises its own and asyncio's: nothing came within the wait
                        return []
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    def _spawn(self, msg: Pulled) -> None:
        task = asyncio.create_task(self._run(msg))
        self._in_flight[task] = msg
        self._count()
        if len(self._in_flight) >= self._concurrency:
            self._slot_free.clear()
        task.add_done_callback(self._done)

    async def _run(self, msg: Pulled) -> None:
        if self._heartbeat_s is None:
            await self._handle(msg)
            return
        heartbeat = asyncio.create_task(self._keep_alive(msg))
        try:
            await self._handle(msg)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _keep_alive(self, msg: Pulled) -> None:
        assert self._heartbeat_s is not None
        while True:
            await asyncio.sleep(self._heartbeat_s)
            with contextlib.suppress(nats.errors.Error):  # a lost heartbeat costs a redelivery at worst
                await msg.in_progress()

    def _count(self) -> None:
        if self._on_in_flight is not None:
            self._on_in_flight(len(self._in_flight))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._count()
        if len(self._in_flight) < self._concurrency:
            self._slot_free.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            # the handler answers its own failures; this is the bus failing under it: left unacked,
            # the message comes back after its ack wait
            log.error(
                "delivery_failed",
                durable=self._durable,
                error=f"{type(error).__name__}: {error}",
                exc_info=error,
            )

    async def _hand_back(self, msg: Pulled) -> None:
        with contextlib.suppress(nats.errors.Error):
            await msg.nack()

    async def stop(self, budget_s: float) -> None:
        """Stop intake; wait up to `budget_s` in all for running handlers, then hand back the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        self._stopping = True
        self._slot_free.set()
        if self._pull_task is not None:
            _, pending = await asyncio.wait({self._pull_task}, timeout=self._fetch_wait_s + 1.0)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._in_flight:
            log.info("worker_stop_draining", durable=self._durable, in_flight=len(self._in_flight))
            await asyncio.wait(set(self._in_flight), timeout=max(0.0, deadline - loop.time()))
        unfinished = dict(self._in_flight)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for msg in unfinished.values():
            await self._hand_back(msg)
        if unfinished:
            log.warning("worker_stop_handed_back", durable=self._durable, count=len(unfinished))
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None
