"""The live feed behind `GET /api/events`: one ordered consumer for the whole gateway, fanned out to
every connected page.

Each event on `fmcsa.evt.>` (from now on) becomes a `Change` (type, DOT, source, stream sequence). A
change is handed out only once the status view has applied its sequence (or after `view_wait_s`, so a
stalled projector delays the page but never silences it): a page that re-reads a company on a change
sees the change. A subscriber that falls more than `queue_size` changes behind gets one `resync`
instead of the backlog, and reloads what it shows. The consumer is ordered and ephemeral: it keeps no
state on the server and restarts itself after a broker outage. It is a FastStream subscriber on the
gateway's one connection (`fmcsa_runtime.broker.SharedConnectionBroker`); the bodies are not decoded
(the subject and the stream sequence are all a change needs), nothing is acked (an ordered consumer
takes no acks).

A page that reconnects resumes: its EventSource sends the id of the last change it got (`Last-Event-ID`,
the stream sequence), and the feed first hands it the changes released since, from the newest
`replay_size` it keeps in memory; when that id is older than what is kept (or than this gateway's start),
the page gets one `resync` instead and reloads what it shows (`LiveFeed.subscribe`, `resume_from`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsMessage
from faststream.nats.subscriber.usecases import LogicSubscriber
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from fmcsa_events.subjects import EVENTS_PREFIX, EVENTS_WILDCARD
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_runtime.broker import SharedConnectionBroker

log = structlog.get_logger(__name__)

AppliedPosition = Callable[[], Awaitable[int]]
ChangeListener = Callable[["Change"], None]


@dataclass(frozen=True, slots=True)
class Change:
    """One event, as the page needs it: what happened, to which company and source, at which sequence."""

    type: str
    seq: int
    dot: str | None = None
    source: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"type": self.type, "seq": self.seq, "dot": self.dot, "source": self.source}


RESYNC = Change(type="resync", seq=0)


def change_of(subject: str, seq: int) -> Change | None:
    """Read a change from a subject `fmcsa.evt.<type>[.<source>][.<dot>]`; None for other subjects."""
    prefix = f"{EVENTS_PREFIX}."
    if not subject.startswith(prefix):
        return None
    parts = subject[len(prefix) :].split(".")
    kind, rest = parts[0], parts[1:]
    dot = next((p for p in rest if p.isdigit()), None)
    source = next((p for p in rest if not p.isdigit()), None)
    return Change(type=kind, seq=seq, dot=dot, source=source)


class Subscription:
    """One page's queue of changes; bounded, collapsing to a single `resync` when it overflows."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=size)
        self._lagged = False

    def offer(self, change: Change) -> None:
        if self._lagged:
            return
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self._lagged = True

    def resync(self) -> None:
        """Hand a `resync` next (the page reloads what it shows); changes before it are dropped."""
        self._lagged = True

    async def next(self, timeout_s: float) -> Change | None:
        """The next change, `RESYNC` after an overflow, or None when nothing came within `timeout_s`."""
        if self._lagged and self._queue.empty():
            self._lagged = False
            return RESYNC
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None


async def _undecoded(message: StreamMessage[Msg]) -> bytes:
    """FastStream's decoder for the feed: the body stays bytes (a poison body costs nothing here)."""
    return message.body


def resume_from(recent: deque[Change], covered_after: int | None, last_id: int) -> list[Change] | None:
    """The changes a page that last got `last_id` missed, or None when some may be gone (then it resyncs).

    `recent` holds every change released after the stream sequence `covered_after`, oldest first;
    `covered_after` None: nothing was released yet, so whether the page missed anything from before this
    feed started cannot be told (None). Pure.
    """
    if covered_after is None or last_id < covered_after:
        return None
    return [change for change in recent if change.seq > last_id]


class LiveFeed:
    """Fans the event stream out to subscribers, each change after the status view applied it."""

    def __init__(
        self,
        broker: SharedConnectionBroker,
        *,
        applied: AppliedPosition | None,
        view_wait_s: float,
        queue_size: int = 2000,
        replay_size: int = 1000,
        poll_s: float = 0.05,
        on_change: ChangeListener | None = None,
    ) -> None:
        self._broker = broker
        self._on_change = on_change
        self._applied = applied
        self._view_wait_s = view_wait_s
        self._queue_size = queue_size
        self._poll_s = poll_s
        self._subscribers: set[Subscription] = set()
        self._recent: deque[Change] = deque(maxlen=replay_size)
        self._covered_after: int | None = None  # every change released after it is in _recent
        self._pending: deque[tuple[float, Change]] = deque()
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: LogicSubscriber[Any] | None = None
        self.last_seq = 0

    async def start(self) -> None:
        """Subscribe from now on (the broker is connected) and start releasing changes."""
        self._sub = self._broker.subscriber(
            EVENTS_WILDCARD,
            stream=JStream(EVENTS_STREAM, declare=False),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.MANUAL,
            decoder=_undecoded,
            persistent=False,
        )
        self._sub(self._on_delivery)
        await self._sub.start()
        self._tasks.append(asyncio.create_task(self._release_loop(), name="live-feed-release"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._sub is not None:
            with contextlib.suppress(Exception):  # the connection may already be closing
                await self._sub.stop()
            self._sub = None

    async def _on_delivery(self, message: NatsMessage) -> None:
        """The FastStream handler (`faststream.nats.NatsMessage` is the delivery, injected by type)."""
        await self._on_message(message.raw_message)

    async def _on_message(self, msg: Msg) -> None:
        change = change_of(msg.subject, msg.metadata.sequence.stream)
        if change is None:
            return
        self.last_seq = max(self.last_seq, change.seq)
        if self._on_change is not None:
            self._on_change(change)  # at once, not after the view: e.g. the schedule cache's invalidation
        self._pending.append((time.monotonic(), change))
        self._arrived.set()

    async def _release_loop(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._pending:
                position = await self._position()
                now = time.monotonic()
                while self._pending:
                    arrived_at, change = self._pending[0]
                    if change.seq > position and now - arrived_at < self._view_wait_s:
                        break
                    self._pending.popleft()
                    self._broadcast(change)
                if self._pending:
                    await asyncio.sleep(self._poll_s)  # poll interval of the view's applied position

    async def _position(self) -> int:
        if self._applied is None:
            return self.last_seq
        try:
            return await self._applied()
        except Exception as error:  # the view being swapped or down must not stop the feed
            log.warning("live_feed_position_unreadable", error=str(error)[:200])
            return 0

    def _broadcast(self, change: Change) -> None:
        if self._covered_after is None:
            self._covered_after = change.seq - 1  # what came before this feed started is not kept
        elif self._recent.maxlen is not None and len(self._recent) == self._recent.maxlen:
            self._covered_after = self._recent[0].seq  # the oldest kept change is about to be dropped
        self._recent.append(change)
        for subscriber in list(self._subscribers):
            subscriber.offer(change)

    @contextlib.asynccontextmanager
    async def subscribe(self, last_id: int | None = None) -> AsyncIterator[Subscription]:
        """A page's queue; with `last_id` (its `Last-Event-ID`), first the changes it missed since, or
        one `resync` when some of them are no longer kept. No await between the replay and joining the
        fan-out, so no change falls between them.
        """
        subscription = Subscription(self._queue_size)
        if last_id is not None:
            missed = resume_from(self._recent, self._covered_after, last_id)
            if missed is None:
                subscription.resync()
            for change in missed or []:
                subscription.offer(change)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
