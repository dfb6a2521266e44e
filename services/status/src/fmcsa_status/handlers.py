"""The projector loop: read FMCSA_EVENTS in order from the applied position + 1, fold in batches.

Steps only; every decision is in `domain`, every write in `store`. One batch = one transaction that
also moves the position. After any failure (store or bus down) it pauses, re-reads the position and
resubscribes from there, so nothing is skipped and nothing is folded twice.
"""

from __future__ import annotations

import asyncio
import time

import stamina
import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram

from fmcsa_events.consume import Delivered, OrderedFollower
from fmcsa_runtime.deadletter import dead_letter
from fmcsa_status.store import Applied, Resync, StatusStore

SERVICE = "status"

log = structlog.get_logger(__name__)

APPLIED = Counter("fmcsa_status_events_total", "Stream messages folded into the status store")
REJECTED = Counter("fmcsa_status_rejected_total", "Stream messages refused as poison", ["reason"])
_BUCKETS = (0.005, 0.02, 0.05, 0.1, 0.5, 2.0)
POSITION = Gauge("fmcsa_status_position", "Stream sequence the status store has applied")
BATCH_SECONDS = Histogram(
    "fmcsa_status_batch_seconds",
    "Time to fold and commit one batch",
    buckets=(0.005, 0.02, 0.05, 0.1, 0.5, 2),
)


class Projector:
    """Folds the event stream into the status store until stopped."""

    def __init__(
        self,
        js: JetStreamContext,
        store: StatusStore,
        *,
        batch_size: int,
        batch_wait_s: float,
        retry_max_s: float = 5.0,
    ) -> None:
        self._js = js
        self._store = store
        self._batch_size = batch_size
        self._batch_wait_s = batch_wait_s
        self._retry_max_s = retry_max_s
        self._stopping = asyncio.Event()
        self._applying = False
        self._task: asyncio.Task[None] | None = None
        self.position = 0
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="status-projector")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, *, grace_s: float) -> None:
        """Stop after the batch in hand is committed (or rolled back once `grace_s` is over)."""
        self._stopping.set()
        task = self._task
        if task is None:
            return
        if not self._applying:
            task.cancel()  # waiting for messages: nothing is in flight
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            task.cancel()  # the open transaction rolls back; the position says where to resume
            await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.error("projector_stopped_with_error", error=repr(task.exception()))
        try:
            await self._store.flush()
        except Exception:  # the batch in flight is lost, not applied: its messages are read again
            log.exception("projector_last_write_failed")

    async def run(self) -> None:
        """Follow the stream; after a failure (store or bus trouble) stamina pauses (0.1 s doubling up
        to `retry_max_s`, one `stamina.retry_scheduled` line each) and `_follow` resumes from the stored
        position. The first failure of a run of them is logged with its traceback, the rest are not.
        """
        while not self._stopping.is_set():
            streak = 0

            def failed(error: BaseException) -> bool:
                if not isinstance(error, Exception):  # a cancel (the stop) is never retried
                    return False
                nonlocal streak
                streak += 1
                self.failures += 1
                if streak == 1:
                    log.error("projector_failed", error=repr(error), exc_info=error)
                return True

            with structlog.contextvars.bound_contextvars(retrying="projector"):
                async for attempt in stamina.retry_context(
                    on=failed,
                    attempts=None,
                    timeout=None,
                    wait_initial=0.1,
                    wait_max=self._retry_max_s,
                    wait_jitter=0.0,
                ):
                    with attempt:
                        await self._follow()

    async def _follow(self) -> None:
        """Subscribe from the stored position + 1 and fold batches until stopped or resynced."""
        position = await self._store.position()
        self.position = position
        POSITION.set(position)
        log.info("projector_following", start_seq=position + 1)
        async with OrderedFollower(
            self._js, position + 1, high_water=max(4 * self._batch_size, 1000)
        ) as feed:
            while not self._stopping.is_set():
                batch = await feed.take(self._batch_size, self._batch_wait_s)
                if batch:
                    result = await self.on_batch(batch, believed=position)
                else:  # idle: let the last write finish, and learn now if it was refused
                    result = await self._store.flush() or Applied(position, 0, ())
                if isinstance(result, Resync):
                    log.warning("projector_resync", believed=position, store_position=result.position)
                    return
                position = result.position

    async def on_batch(self, batch: list[Delivered], *, believed: int) -> Applied | Resync:
        started = time.perf_counter()
        self._applying = True
        try:
            result = await self._store.apply(batch, believed=believed, dead_letter=self._dead_letter)
        finally:
            self._applying = False
        if isinstance(result, Applied):
            BATCH_SECONDS.observe(time.perf_counter() - started)
            APPLIED.inc(result.events)
            for _, reason, _detail in result.poison:
                REJECTED.labels(reason=reason).inc()
            self.position = result.position
            POSITION.set(result.position)
        return result

    async def _dead_letter(self, message: Delivered, reason: str, detail: str) -> None:
        """Publish one dead letter (awaits its PubAck). REPLAY: the live projector only."""
        log.warning(
            "event_dead_lettered", seq=message.seq, subject=message.subject, reason=reason, detail=detail
        )
        await dead_letter(
            self._js,
            service=SERVICE,
            reason=reason,
            detail=detail,
            subject=message.subject,
            data=message.data,
            headers=message.headers,
            stream_seq=message.seq,
        )
