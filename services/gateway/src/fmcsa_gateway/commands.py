"""What the gateway asks of the system: events it publishes, each after its PubAck, never a store write.

- `register` / `register_many` publish `CompanyRegistered`; `remove` publishes `CompanyRemoved`.
- `change_schedule` publishes `ScheduleChanged` (already checked by `domain.check_schedule`).
- `trigger` takes the in-flight marker of each (DOT, source) with `fmcsa_events.inflight.take` (create if
  absent, or take over a stale one), then publishes `SyncRequested(trigger=manual)`; a pair whose marker
  is held is skipped with the request that holds it. If a publish fails after its marker was taken, the
  marker is released again so the pair is not blocked until the bucket's TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import structlog
from nats.js.kv import KeyValue
from prometheus_client import Counter

from fmcsa_events.bus import Bus, Published
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.inflight import Held, InflightMarker, release, take
from fmcsa_events.models import CompanyRegistered, CompanyRemoved, ScheduleChanged, SyncRequested, Trigger
from fmcsa_gateway.domain import ScheduleSpec

log = structlog.get_logger(__name__)

PUBLISHED = Counter("fmcsa_gateway_events_published_total", "Events the gateway published", ["type"])
TRIGGERED = Counter("fmcsa_gateway_trigger_pairs_total", "Manual trigger pairs by result", ["result"])


@dataclass(frozen=True, slots=True)
class Started:
    dot: str
    source: SourceKey
    request_id: UUID
    deadline: datetime


@dataclass(frozen=True, slots=True)
class Skipped:
    dot: str
    source: SourceKey
    held_by: UUID
    trigger: Trigger
    deadline: datetime


@dataclass(frozen=True, slots=True)
class TriggerResult:
    started: list[Started]
    skipped: list[Skipped]


class Commands:
    """Publishes the gateway's events; `by` is always the caller's token subject."""

    def __init__(
        self,
        bus: Bus,
        inflight: KeyValue,
        *,
        clock: Callable[[], datetime],
        request_deadline: timedelta,
        in_flight: int,
    ) -> None:
        self._bus = bus
        self._inflight = inflight
        self._clock = clock
        self._deadline = request_deadline
        self._in_flight = in_flight

    async def register(self, dot: str, name: str | None, *, by: str) -> Published:
        published = await self._bus.publish(CompanyRegistered(dot=dot, name=name, registered_by=by))
        PUBLISHED.labels(CompanyRegistered.TYPE).inc()
        return published

    async def register_many(
        self, companies: Sequence[tuple[str, str | None]], *, by: str
    ) -> Sequence[Published]:
        """Publish one `CompanyRegistered` per company, pipelined; returns what was stored."""
        events = [CompanyRegistered(dot=dot, name=name, registered_by=by) for dot, name in companies]
        published = await self._bus.publish_many(events, in_flight=self._in_flight)
        PUBLISHED.labels(CompanyRegistered.TYPE).inc(len(published))
        return published

    async def remove(self, dot: str, *, by: str) -> Published:
        published = await self._bus.publish(CompanyRemoved(dot=dot, removed_by=by))
        PUBLISHED.labels(CompanyRemoved.TYPE).inc()
        return published

    async def change_schedule(self, source: SourceKey, spec: ScheduleSpec, *, by: str) -> ScheduleChanged:
        event = ScheduleChanged(
            source=source,
            interval_minutes=spec.interval_minutes,
            cron=spec.cron,
            enabled=spec.enabled,
            changed_by=by,
        )
        await self._bus.publish(event)
        PUBLISHED.labels(ScheduleChanged.TYPE).inc()
        return event

    async def trigger(self, pairs: Sequence[tuple[str, SourceKey]], *, by: str) -> TriggerResult:
        """Request a sync of each pair not already in flight; results keep the order of `pairs`."""
        semaphore = asyncio.Semaphore(self._in_flight)

        async def one(dot: str, source: SourceKey) -> Started | Skipped:
            async with semaphore:
                return await self._trigger_one(dot, source, by=by)

        results = await asyncio.gather(*(one(dot, source) for dot, source in pairs))
        started = [r for r in results if isinstance(r, Started)]
        skipped = [r for r in results if isinstance(r, Skipped)]
        TRIGGERED.labels("started").inc(len(started))
        TRIGGERED.labels("skipped").inc(len(skipped))
        return TriggerResult(started=started, skipped=skipped)

    async def _trigger_one(self, dot: str, source: SourceKey, *, by: str) -> Started | Skipped:
        now = self._clock()
        request = SyncRequested(
            request_id=uuid4(),
            dot=dot,
            source=source,
            trigger=Trigger.MANUAL,
            requested_by=by,
            requested_at=now,
            deadline=now + self._deadline,
        )
        marker = InflightMarker.for_request(request, taken_at=now)
        held = await take(self._inflight, marker, source=source, dot=dot, now=now)
        if isinstance(held, Held):
            return Skipped(dot, source, held.marker.request_id, held.marker.trigger, held.marker.deadline)
        try:
            await self._bus.publish(request)
        except BaseException:
            # the request never reached the log: free the pair instead of blocking it until the TTL
            await asyncio.shield(
                release(self._inflight, source=source, dot=dot, request_id=request.request_id)
            )
            raise
        PUBLISHED.labels(SyncRequested.TYPE).inc()
        log.info("sync_triggered", dot=dot, source=str(source), request_id=str(request.request_id), by=by)
        return Started(dot, source, request.request_id, request.deadline)
