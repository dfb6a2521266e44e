"""State the gateway reads from the bus itself: schedules and the scheduler's heartbeat.

- Schedules: the last `ScheduleChanged` per source, read with a direct last-message-by-subject get on
  the event stream, so a PUT is visible to the next GET (read-your-writes) with no fold kept here.
  A source that never had one runs on the scheduler's default: every 360 minutes (authority: 1440), enabled.
  `ScheduleCache` keeps them for the answers that only show them (each source's next due time in a
  company's status): read at most once per `SCHEDULES_TTL_S`, and afresh after the gateway publishes
  a ScheduleChanged or its live feed sees one. `GET /api/schedules` always reads the stream.
- Scheduler status: the document the scheduler writes under `scheduler.status` in the `fmcsa_state`
  bucket (services/scheduler/README.md), read with the document type both share
  (`fmcsa_events.scheduler_status`): the gateway imports no other service.
- Upstream pace: each source's shared pace per upstream host, the documents the sources keep in the
  `fmcsa_pace` bucket, and their replicas' heartbeats in `fmcsa_pace_replicas` (see
  `fmcsa_source_kit.pacing`). Keys are listed from the bucket's stream info (no consumer is made), then
  each is read with a direct get; a heartbeat older than the bucket's TTL is gone already.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ScheduleChanged
from fmcsa_events.scheduler_status import SCHEDULER_STATUS_KEY
from fmcsa_events.scheduler_status import SchedulerStatus as SchedulerStatusDocument
from fmcsa_events.schedules import default_interval_minutes
from fmcsa_events.subjects import schedule_changed
from fmcsa_events.topology import EVENTS_STREAM, PACE_BUCKET, PACE_REPLICAS_BUCKET, bucket_keys
from fmcsa_gateway.schemas import Schedule, SchedulerStatus, UpstreamPace

log = structlog.get_logger(__name__)

STALE_AFTER_S = 30.0
"""A heartbeat older than this means no scheduler replica is running (it writes every few seconds)."""


def default_schedule(source: SourceKey) -> Schedule:
    return Schedule(
        source=source,
        interval_minutes=default_interval_minutes(source),
        cron=None,
        enabled=True,
        default=True,
        changed_by=None,
        changed_at=None,
    )


async def current_schedule(js: JetStreamContext, source: SourceKey) -> Schedule:
    """The schedule in force for `source`: its last ScheduleChanged, else the default."""
    try:
        message = await js.get_last_msg(EVENTS_STREAM, schedule_changed(source))
    except NotFoundError:
        return default_schedule(source)
    decoded = decode(message.headers, message.data or b"")
    if not isinstance(decoded, Decoded) or not isinstance(decoded.event, ScheduleChanged):
        log.warning("schedule_undecodable", source=str(source), seq=message.seq)
        return default_schedule(source)
    event = decoded.event
    return Schedule(
        source=source,
        interval_minutes=event.interval_minutes,
        cron=event.cron,
        enabled=event.enabled,
        default=False,
        changed_by=event.changed_by,
        changed_at=decoded.envelope.occurred_at,
    )


async def current_schedules(js: JetStreamContext) -> list[Schedule]:
    return [await current_schedule(js, source) for source in SourceKey]


SCHEDULES_TTL_S = 10.0
"""Longest the cached schedules are used without reading the stream again (a bound on staleness when
the live feed missed another replica's ScheduleChanged, e.g. across a broker outage)."""


class ScheduleCache:
    """The schedules in force by source, read through `load` (three direct gets) at most once per
    `ttl_s`, and again at once after `invalidate()`.

    Concurrent callers share one read. A read that was running when `invalidate()` was called is
    answered to its callers but not kept, so no schedule older than the invalidation is served after
    it to anyone who asked after it.
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[list[Schedule]]],
        *,
        ttl_s: float = SCHEDULES_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._value: dict[SourceKey, Schedule] | None = None
        self._until = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()

    def _fresh(self) -> dict[SourceKey, Schedule] | None:
        if self._value is not None and self._monotonic() < self._until:
            return self._value
        return None

    async def get(self) -> Mapping[SourceKey, Schedule]:
        """Each source's schedule (every source is present; a default where none was set)."""
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            generation, started = self._generation, self._monotonic()
            value = {schedule.source: schedule for schedule in await self._load()}
            if generation == self._generation:
                self._value, self._until = value, started + self._ttl_s
            return value

    def invalidate(self) -> None:
        """Forget the schedules: a ScheduleChanged was published or seen."""
        self._generation += 1
        self._value = None


async def scheduler_status(state: KeyValue, *, now: datetime) -> SchedulerStatus:
    """The scheduler's last heartbeat, marked stale when old; `known=False` before any heartbeat."""
    try:
        entry = await state.get(SCHEDULER_STATUS_KEY)
    except KeyNotFoundError:
        return SchedulerStatus(known=False, running=False, stale=True)
    try:
        document = SchedulerStatusDocument.decode(entry.value)
    except ValidationError as error:
        log.warning("scheduler_status_unreadable", error=str(error)[:200])
        return SchedulerStatus(known=False, running=False, stale=True)
    return _status_from(document, now=now)


def _status_from(document: SchedulerStatusDocument, *, now: datetime) -> SchedulerStatus:
    stale = (now - document.heartbeat_at).total_seconds() > STALE_AFTER_S
    known_fields = set(SchedulerStatus.model_fields) - {"known", "running", "stale"}
    fields = {k: v for k, v in document.model_dump(mode="json").items() if k in known_fields}
    return SchedulerStatus.model_validate(
        {**fields, "known": True, "stale": stale, "running": document.running and not stale}
    )


async def _documents(js: JetStreamContext, bucket: str) -> dict[str, dict[str, Any]]:
    """Every live key of a small bucket with its JSON document (unreadable ones are skipped)."""
    try:
        kv = await js.key_value(bucket)
    except NotFoundError:
        return {}
    documents: dict[str, dict[str, Any]] = {}
    for key in await bucket_keys(js, bucket):
        try:
            entry = await kv.get(key)
            document = json.loads(entry.value or b"{}")
        except (KeyNotFoundError, KeyDeletedError, ValueError):
            continue
        if isinstance(document, dict):
            documents[key] = document
    return documents


async def upstream_paces(js: JetStreamContext, *, now: datetime) -> list[UpstreamPace]:
    """Each (source, upstream host)'s shared pace with its live replicas, by key."""
    replicas = await _documents(js, PACE_REPLICAS_BUCKET)
    paces: list[UpstreamPace] = []
    for key, document in (await _documents(js, PACE_BUCKET)).items():
        source, _, host = key.partition(".")
        mine = [d for k, d in replicas.items() if k.rpartition(".")[0] == key]
        try:
            changed = document.get("changed_at")
            paces.append(
                UpstreamPace(
                    source=source,
                    host=host,
                    pace_per_s=float(document["rate"]),
                    ceiling_per_s=float(document["ceiling"]),
                    limit_seen_per_s=None
                    if document.get("limit_seen") is None
                    else float(document["limit_seen"]),
                    throttled=int(document.get("throttled", 0)),
                    changed_at=datetime.fromtimestamp(float(changed), tz=now.tzinfo) if changed else None,
                    replicas=len(mine),
                    waited_s=round(sum(float(d.get("waited_s", 0.0)) for d in mine), 3),
                )
            )
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            log.warning("upstream_pace_unreadable", key=key, error=str(error)[:200])
    return paces
