"""The scheduler's loops: fold the registry, follow requests and outcomes, tick, beat. Steps only; every
decision is in `domain`, `registry`, `timetable` and `outcomes`.

Start-up order: load the checkpoint and the back-offs, fold the registry from the start of the stream
until caught up, build the timetable (catching up only the latest missed slot of each pair), then tick.
The followers keep folding live events for as long as the process runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import stamina
import structlog
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge, Histogram

from fmcsa_events import subjects
from fmcsa_events.bus import Bus
from fmcsa_events.consume import OrderedFollower
from fmcsa_events.decoder import Decoded, Undecodable
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.inflight import InflightMarker, Taken, release, take
from fmcsa_events.models import (
    CompanyRegistered,
    CompanyRemoved,
    Event,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncRequested,
    Trigger,
)
from fmcsa_events.scheduler_status import SchedulerSourceStatus, SchedulerStatus
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_scheduler.capacity import (
    DEFAULT_PACE_PER_S,
    Capacity,
    RecentOutcomes,
    cycle,
    in_flight_cap,
)
from fmcsa_scheduler.domain import (
    HOUR_MS,
    Publish,
    Skip,
    SkipReason,
    after_marker_held,
    from_ms,
    in_backoff,
    is_catch_up,
    slot_request_id,
    to_ms,
)
from fmcsa_scheduler.outcomes import BackoffChange, Outcomes
from fmcsa_scheduler.registry import CompanyAdded, Registry, ScheduleRejected, ScheduleSet
from fmcsa_scheduler.settings import Clock, Settings
from fmcsa_scheduler.sources_state import load_last_synced, read_paces
from fmcsa_scheduler.staleness import Staleness
from fmcsa_scheduler.state import Checkpoint, StateStore
from fmcsa_scheduler.timetable import DueEntry, Timetable

log = structlog.get_logger(__name__)

PRODUCER = "scheduler"
READ_BATCH = 500
"""Messages per batch of each fold: memory stays flat however long the history."""
READ_IDLE_S = 1.0
REGISTRY_SUBJECTS = [
    f"{subjects.EVENTS_PREFIX}.{CompanyRegistered.TYPE}.>",
    f"{subjects.EVENTS_PREFIX}.{CompanyRemoved.TYPE}.>",
    f"{subjects.EVENTS_PREFIX}.{ScheduleChanged.TYPE}.>",
]
ACTIVITY_SUBJECTS = [
    f"{subjects.EVENTS_PREFIX}.{SyncRequested.TYPE}.>",
    f"{subjects.EVENTS_PREFIX}.{SourceSynced.TYPE}.>",
    f"{subjects.EVENTS_PREFIX}.{SourceFailed.TYPE}.>",
]

REQUESTS = MetricCounter(
    "fmcsa_scheduler_requests_total", "Requests the scheduler published", ["source", "trigger"]
)
SKIPPED = MetricCounter(
    "fmcsa_scheduler_skipped_total", "Due slots not requested, by reason", ["source", "reason"]
)
TICK_SECONDS = Histogram("fmcsa_scheduler_tick_seconds", "Duration of one tick (with work)")
CYCLE_HOURS_NEEDED = Gauge(
    "fmcsa_scheduler_cycle_hours_needed",
    "Hours to sync every registered company once at the source's expected rate",
    ["source"],
)
INTERVAL_HOURS = Gauge("fmcsa_scheduler_interval_hours", "The source's interval in hours", ["source"])
IN_FLIGHT_CAP = Gauge(
    "fmcsa_scheduler_in_flight_cap",
    "Most open requests of the source (served within the deadline)",
    ["source"],
)
WAITING = Gauge("fmcsa_scheduler_waiting", "Due pairs held back by the in-flight cap", ["source"])

_TRANSIENT = (NatsError, TimeoutError)
ACTIVITY_RETRY_S = 30.0
ACTIVITY_WAIT_INITIAL_S = 0.1
ACTIVITY_WAIT_MAX_S = 5.0
"""A bus error while applying a request or an outcome is retried for up to `ACTIVITY_RETRY_S`, 0.1 s
doubling up to 5 s between tries."""


@dataclass
class Stats:
    """Counters since this replica started, for the status document."""

    last_tick_ms: int | None = None
    checkpoint_ms: int | None = None
    activity_seq: int = 0  # requests and outcomes are applied up to this stream sequence
    due: Counter[SourceKey] = field(default_factory=Counter)  # since the last heartbeat
    published: Counter[SourceKey] = field(default_factory=Counter)
    skipped: dict[SourceKey, Counter[str]] = field(default_factory=lambda: {s: Counter() for s in SourceKey})
    rejected_schedules: int = 0
    undecodable: int = 0
    activity_retries: int = 0  # bus errors retried while applying a request or an outcome

    def skip(self, source: SourceKey, reason: SkipReason) -> None:
        self.skipped[source][reason] += 1
        SKIPPED.labels(source=source, reason=reason).inc()


class Scheduler:
    """One replica of the scheduler: its connection, its folds and its loops."""

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.registry = Registry(settings.default_interval_minutes, settings.default_intervals())
        self.timetable = Timetable(self.registry)
        self.outcomes = Outcomes()
        self.staleness = Staleness(self.registry)
        self.recent = RecentOutcomes()
        self.paces: dict[SourceKey, float] = {}  # read from fmcsa_pace at each heartbeat
        self._calls = settings.sync_costs()
        self.caps = {source: self._cap(source) for source in SourceKey}
        self._seeded = False
        self.stats = Stats()
        self.started_ms = to_ms(clock())
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._readers: list[OrderedFollower] = []
        self._max_backoff_ms = int(settings.backoff_max_hours * HOUR_MS)
        self._nc: NatsClient | None = None
        # The stream's duplicate window (real time) in the scheduler's time (scaled only in tests), with a
        # margin: a marker of our own younger than this may be published again and is dropped if stored.
        duplicate_window_ms = settings.topology().duplicate_window_s * 1000 * settings.clock_scale
        self._republish_window_ms = int(duplicate_window_ms * 0.8)

    async def is_ready(self) -> bool:
        return self.ready.is_set()

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self, nc: NatsClient, inflight: KeyValue, state: KeyValue) -> None:
        """Load state, subscribe, and start the loops; returns at once (readiness follows the catch-up)."""
        self._nc = nc
        js = nc.jetstream()
        self._js = js
        self._inflight, self._state = inflight, StateStore(state)
        self._bus = Bus(js, producer=PRODUCER, clock=self.clock)
        checkpoint = await self._state.read_checkpoint()
        if checkpoint is not None:
            self.stats.checkpoint_ms, self.stats.activity_seq = checkpoint.through_ms, checkpoint.activity_seq
        else:  # a first start follows requests and outcomes from now on
            self.stats.activity_seq = int((await js.stream_info(EVENTS_STREAM)).state.last_seq)
        self.outcomes = Outcomes(await self._state.load_backoffs())
        registry = OrderedFollower(
            js, 1, subjects=REGISTRY_SUBJECTS, name="registry", high_water=2 * READ_BATCH
        )
        # Requests and outcomes after the checkpoint's are replayed: they came while no replica ran, or
        # their markers and back-offs were not written yet.
        activity_from = self.stats.activity_seq + 1
        activity = OrderedFollower(
            js, activity_from, subjects=ACTIVITY_SUBJECTS, name="activity", high_water=2 * READ_BATCH
        )
        self._readers = [registry, activity]
        for reader in self._readers:
            await reader.open()
        self._running = True
        self._tasks = [
            asyncio.create_task(self._seed_staleness(js), name="scheduler-last-synced"),
            asyncio.create_task(self._follow_registry(registry), name="scheduler-registry"),
            asyncio.create_task(self._follow_activity(activity), name="scheduler-activity"),
            asyncio.create_task(self._tick_loop(), name="scheduler-ticks"),
            asyncio.create_task(self._heartbeat_loop(), name="scheduler-heartbeat"),
        ]
        log.info(
            "scheduler_started",
            replica=self.settings.replica_id,
            checkpoint=self._iso(self.stats.checkpoint_ms),
        )

    async def stop(self) -> None:
        """Let a running tick finish (up to `grace_s` less a few seconds, left for the final status, the
        readers and the connection: the shell cuts the whole stop at `grace_s`), stop the loops, and
        report `running: false`.
        """
        self._stopping.set()
        ticks = [t for t in self._tasks if t.get_name() == "scheduler-ticks"]
        if ticks and self.ready.is_set():
            grace_s = self.settings.grace_s
            await asyncio.wait(ticks, timeout=max(grace_s - 3.0, grace_s / 2))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._running = False
        if self._nc is not None and self._nc.is_connected:
            try:
                await self._state.write_status(self.status())
            except _TRANSIENT as error:
                log.warning("final_status_not_written", error=repr(error))
        for reader in self._readers:
            await reader.close()
        log.info("scheduler_stopped", replica=self.settings.replica_id)

    # --- folds -----------------------------------------------------------------------------------------

    async def _follow_registry(self, reader: OrderedFollower) -> None:
        """Fold the registry from the first event; once caught up build the timetable, then stay live."""
        while True:
            for msg in await reader.take(READ_BATCH, 0.0, idle_s=READ_IDLE_S):
                decoded = self._decoded(msg.decoded)
                if decoded is None:
                    continue
                change = self.registry.apply(decoded.event, occurred_ms=to_ms(decoded.envelope.occurred_at))
                if self.ready.is_set():
                    self._apply_live(change)
                elif isinstance(change, ScheduleRejected):
                    self._reject(change)
            if reader.caught_up and self._seeded and not self.ready.is_set():
                self._build_timetable()

    async def _seed_staleness(self, js: JetStreamContext) -> None:
        """Read when each pair was last synced (the order of companies waiting for capacity), once."""
        started = time.perf_counter()
        try:
            found = await load_last_synced(js)
        except _TRANSIENT as error:  # served in due order until outcomes come in; not worth a failed start
            log.warning("last_synced_not_read", error=repr(error))
            found = {}
        self.staleness.seed(found)
        with contextlib.suppress(*_TRANSIENT):
            self.paces = await read_paces(js)
        self._refresh_capacity()
        self._seeded = True
        log.info("last_synced_read", pairs=len(found), seconds=round(time.perf_counter() - started, 2))

    def _build_timetable(self) -> None:
        now_ms = to_ms(self.clock())
        self.started_ms = now_ms
        self.staleness.bind()
        self.timetable.rebuild_all(now_ms=now_ms, checkpoint_ms=self.stats.checkpoint_ms)
        self.ready.set()
        log.info(
            "timetable_built", companies=len(self.registry), checkpoint=self._iso(self.stats.checkpoint_ms)
        )

    def _apply_live(self, change: object) -> None:
        now_ms = to_ms(self.clock())
        match change:
            case CompanyAdded(index=index):
                self.staleness.forget(index)
                self.timetable.add(index, now_ms=now_ms)
            case ScheduleSet(source=source, schedule=schedule):
                self.timetable.rebuild(source, now_ms=now_ms, checkpoint_ms=None)
                log.info(
                    "schedule_changed",
                    source=source,
                    interval_minutes=schedule.interval_minutes,
                    cron=schedule.cron,
                    enabled=schedule.enabled,
                )
            case ScheduleRejected():
                self._reject(change)
            case _:
                pass  # a removal: the company's items are dropped when they surface

    def _reject(self, change: ScheduleRejected) -> None:
        self.stats.rejected_schedules += 1
        log.warning("schedule_rejected", source=change.source, reason=change.reason)

    async def _follow_activity(self, reader: OrderedFollower) -> None:
        """Requests and outcomes: release markers, keep back-offs (persisted), count open requests."""
        while True:
            for msg in await reader.take(READ_BATCH, 0.0, idle_s=READ_IDLE_S):
                decoded = self._decoded(msg.decoded)
                seq = msg.seq
                if decoded is not None:
                    await self._apply_activity(decoded.event, seq)
                self.stats.activity_seq = seq

    async def _apply_activity(self, event: Event, seq: int) -> None:
        """Fold one request or outcome (pure, once), then release its marker and persist its back-off,
        retrying a bus error (a JetStream leader election lasts a few seconds) for up to
        ACTIVITY_RETRY_S; after that the marker ends at its deadline, and that is logged.
        """
        change: BackoffChange | None = None
        answered: SourceSynced | SourceFailed | None = None
        if isinstance(event, SyncRequested):
            change = self.outcomes.requested(event, seq=seq)
        elif isinstance(event, SourceSynced | SourceFailed):
            start, end = self.registry.schedules[event.source].timing().slot_at(to_ms(event.finished_at))
            change = self.outcomes.answered(
                event, seq=seq, gap_ms=end - start, max_backoff_ms=self._max_backoff_ms
            )
            answered = event
            if isinstance(event, SourceSynced):
                self.staleness.synced(event.source, event.dot, to_ms(event.finished_at))
                self.recent.add(event.source, checked_unchanged=event.checked_unchanged)
        released = answered is None

        def transient(error: Exception) -> bool:
            return isinstance(error, _TRANSIENT) and not self._stopping.is_set()

        try:
            with structlog.contextvars.bound_contextvars(retrying="activity", seq=seq):
                async for attempt in stamina.retry_context(
                    on=transient,
                    attempts=None,
                    timeout=ACTIVITY_RETRY_S,
                    wait_initial=ACTIVITY_WAIT_INITIAL_S,
                    wait_max=ACTIVITY_WAIT_MAX_S,
                    wait_jitter=0.0,
                ):
                    with attempt:
                        if attempt.num > 1:
                            self.stats.activity_retries += 1
                        if not released and answered is not None:
                            await release(
                                self._inflight,
                                source=answered.source,
                                dot=answered.dot,
                                request_id=answered.request_id,
                            )
                            released = True
                        if change is not None:
                            await self._state.save_backoff(change)
        except _TRANSIENT as error:  # out of time, or stopping: the marker ends at its deadline
            log.warning("outcome_not_applied", seq=seq, error=repr(error))

    # --- ticks -----------------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        await self.ready.wait()
        while not self._stopping.is_set():
            more = False
            try:
                more = await self.tick()
            except _TRANSIENT as error:
                log.warning("tick_failed", error=repr(error))
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.settings.tick_s)

    async def tick(self) -> bool:
        """Request every pair due now: skip, take its marker, publish, reschedule. True if more is due."""
        now = self.clock()
        now_ms = to_ms(now)
        entries = self.timetable.pop_due(now_ms, self.settings.max_per_tick)
        self.stats.due.update(entry.source for entry in entries)
        started = time.perf_counter()
        for entry in entries:
            if entry.superseded:
                self.stats.skip(entry.source, SkipReason.MISSED)
            if not self.settings.enabled:
                self._skipped(entry, SkipReason.DISABLED, now_ms)
            elif in_backoff(self.outcomes.backoffs.get((entry.source, entry.dot)), now_ms):
                self._skipped(entry, SkipReason.BACKOFF, now_ms)
            else:  # due: it waits its turn, the stalest first, for room under the source's cap
                self.timetable.hold(entry, self.staleness.of(entry.source, entry.index))
        wanted = self._admit(now, now_ms, budget=self.settings.max_per_tick)
        claims = await self._bounded(self._claim(request, now) for _, request in wanted)
        to_send: list[tuple[DueEntry, SyncRequested, bool]] = []
        for (entry, request), claim in zip(wanted, claims, strict=True):
            if isinstance(claim, Publish):
                if claim.fresh:
                    self.outcomes.sent(request)
                to_send.append((entry, request, claim.fresh))
            elif isinstance(claim, Skip):
                self._skipped(entry, claim.reason, now_ms)
            elif isinstance(claim, _TRANSIENT):  # the marker could not be written or read: next tick
                log.warning("marker_not_taken", source=entry.source, dot=entry.dot, error=repr(claim))
                self.timetable.retry(entry)
            else:  # a bug, not trouble on the wire: let the loop die and the process stop
                assert isinstance(claim, BaseException)
                raise claim
        await self._send(to_send, now_ms)
        self.stats.last_tick_ms = now_ms
        await self._advance_checkpoint(now_ms)
        if entries or wanted:
            TICK_SECONDS.observe(time.perf_counter() - started)
        return len(entries) >= self.settings.max_per_tick or len(wanted) >= self.settings.max_per_tick

    def _admit(self, now: datetime, now_ms: int, *, budget: int) -> list[tuple[DueEntry, SyncRequested]]:
        """The waiting entries that fit under each source's in-flight cap, the stalest first."""
        self.outcomes.expire(now_ms)
        open_now = self.outcomes.open_by_source()
        wanted: list[tuple[DueEntry, SyncRequested]] = []
        for source in SourceKey:
            room = min(budget - len(wanted), self.caps[source] - open_now[source])
            if room <= 0:
                continue
            for entry in self.timetable.take_waiting(
                source, room, now_ms, functools.partial(self.staleness.of, source)
            ):
                if entry.superseded:  # it waited past its slot: the latest slot is requested
                    self.stats.skip(entry.source, SkipReason.MISSED)
                if in_backoff(self.outcomes.backoffs.get((entry.source, entry.dot)), now_ms):
                    self._skipped(entry, SkipReason.BACKOFF, now_ms)
                else:
                    wanted.append((entry, self._request(entry, now)))
        return wanted

    def _request(self, entry: DueEntry, now: datetime) -> SyncRequested:
        catch_up = is_catch_up(entry.due_ms, started_ms=self.started_ms, superseded=entry.superseded)
        return SyncRequested(
            request_id=slot_request_id(entry.source, entry.dot, entry.slot_ms),
            dot=entry.dot,
            source=entry.source,
            trigger=Trigger.CATCH_UP if catch_up else Trigger.SCHEDULED,
            requested_by=PRODUCER,
            requested_at=now,
            deadline=now + timedelta(minutes=self.settings.deadline_minutes),
            slot=from_ms(entry.slot_ms),
        )

    async def _claim(self, request: SyncRequested, now: datetime) -> Publish | Skip:
        marker = InflightMarker.for_request(request, taken_at=now)
        taken = await take(self._inflight, marker, source=request.source, dot=request.dot, now=now)
        if isinstance(taken, Taken):
            return Publish(fresh=True)
        return after_marker_held(
            held_request_id=taken.marker.request_id,
            held_taken_ms=to_ms(taken.marker.taken_at),
            request_id=request.request_id,
            now_ms=to_ms(now),
            republish_window_ms=self._republish_window_ms,
        )

    async def _send(self, to_send: list[tuple[DueEntry, SyncRequested, bool]], now_ms: int) -> None:
        if not to_send:
            return
        try:
            results = await self._bus.publish_many(
                [request for _, request, _ in to_send], in_flight=self.settings.publish_in_flight
            )
        except _TRANSIENT as error:
            # Sent again next tick: our markers carry the same request id, so the republish is allowed,
            # and whatever did reach the stream is dropped there as a duplicate.
            log.warning("publish_failed", count=len(to_send), error=repr(error))
            for entry, request, _ in to_send:
                self.outcomes.unsent(request)
                self.timetable.retry(entry)
            return
        releases: list[Awaitable[bool]] = []
        for (entry, request, fresh), published in zip(to_send, results, strict=True):
            if published.duplicate:
                self.stats.skip(entry.source, SkipReason.ALREADY_REQUESTED)
                if fresh:  # the slot was requested and answered before: the marker we took is not needed
                    self.outcomes.unsent(request)
                    releases.append(
                        release(
                            self._inflight, source=entry.source, dot=entry.dot, request_id=request.request_id
                        )
                    )
            else:
                self.stats.published[entry.source] += 1
                REQUESTS.labels(source=entry.source, trigger=request.trigger).inc()
                log.debug(
                    "sync_requested",
                    source=entry.source,
                    dot=entry.dot,
                    slot=request.slot,
                    trigger=request.trigger,
                )
            self.timetable.reschedule(entry, now_ms=now_ms)
        await self._bounded(releases)

    def _skipped(self, entry: DueEntry, reason: SkipReason, now_ms: int) -> None:
        self.stats.skip(entry.source, reason)
        self.timetable.reschedule(entry, now_ms=now_ms)

    async def _advance_checkpoint(self, now_ms: int) -> None:
        earliest = self.timetable.earliest_due_ms()
        through = now_ms if earliest is None else min(now_ms, earliest - 1)
        if self.stats.checkpoint_ms is None or through > self.stats.checkpoint_ms:
            await self._state.advance_checkpoint(Checkpoint(through, self.stats.activity_seq))
            self.stats.checkpoint_ms = through

    # --- capacity --------------------------------------------------------------------------------------

    def capacity(self, source: SourceKey) -> Capacity:
        """The source's capacity now (see `capacity`).

        Its pace (the default ceiling until it wrote one), what a sync costs, and the share of recent
        syncs that cost nothing.
        """
        pace = self.paces.get(source)
        return Capacity(
            source,
            pace_per_s=pace if pace is not None else DEFAULT_PACE_PER_S[source],
            calls_per_sync=self._calls[source],
            unchanged_share=self.recent.share(source),
            pace_known=pace is not None,
        )

    def _cap(self, source: SourceKey) -> int:
        return in_flight_cap(
            self.capacity(source),
            deadline_s=self.settings.deadline_minutes * 60,
            safety=self.settings.capacity_safety,
            time_scale=self.settings.clock_scale,
        )

    def _refresh_capacity(self) -> None:
        self.caps = {source: self._cap(source) for source in SourceKey}

    # --- status ----------------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            if self._seeded:
                try:
                    self.paces = await read_paces(self._js)
                except _TRANSIENT as error:
                    log.warning("paces_not_read", error=repr(error))
                self._refresh_capacity()
            status = self.status()
            self.stats.due.clear()  # `due` counts what came due between two heartbeats
            try:
                await self._state.write_status(status)
            except _TRANSIENT as error:
                log.warning("status_not_written", error=repr(error))
            await asyncio.sleep(self.settings.status_interval_s)

    def status(self) -> SchedulerStatus:
        """The document for `scheduler.status` (see the README)."""
        now_ms = to_ms(self.clock())
        self.outcomes.expire(now_ms)
        in_flight = self.outcomes.open_by_source()
        backing_off = self.outcomes.backing_off(now_ms)
        sources: dict[str, SchedulerSourceStatus] = {}
        warnings: list[str] = []
        for source in SourceKey:
            schedule = self.registry.schedules[source]
            next_due = self.timetable.next_due_ms(source) if self.ready.is_set() else None
            next_slot = schedule.timing().slot_at(now_ms)[1] if schedule.enabled else None
            capacity = self.capacity(source)
            slot_start, slot_end = schedule.timing().slot_at(now_ms)
            fresh = cycle(
                len(self.registry),
                capacity,
                interval_s=(slot_end - slot_start) / 1000,
                time_scale=self.settings.clock_scale,
            )
            message = fresh.message(source)
            if schedule.enabled and fresh.behind:
                warnings.append(message)
            waiting = self.timetable.waiting(source)
            CYCLE_HOURS_NEEDED.labels(source=source).set(fresh.hours_needed)
            INTERVAL_HOURS.labels(source=source).set(fresh.interval_hours)
            IN_FLIGHT_CAP.labels(source=source).set(self.caps[source])
            WAITING.labels(source=source).set(waiting)
            sources[source] = SchedulerSourceStatus(
                enabled=schedule.enabled,
                interval_minutes=schedule.interval_minutes,
                cron=schedule.cron,
                schedule_since=from_ms(schedule.since_ms) if schedule.since_ms else None,
                next_due_at=from_ms(next_due) if next_due is not None else None,
                next_slot_at=from_ms(next_slot) if next_slot is not None else None,
                due=self.stats.due[source],
                published=self.stats.published[source],
                in_flight=in_flight[source],
                backing_off=backing_off[source],
                skipped=dict(self.stats.skipped[source]),
                waiting=waiting,
                in_flight_cap=self.caps[source],
                pace_per_s=capacity.pace_per_s,
                pace_known=capacity.pace_known,
                calls_per_sync=capacity.calls_per_sync,
                unchanged_share=round(capacity.unchanged_share, 4),
                syncs_per_s=round(capacity.syncs_per_s, 4),
                cycle_hours_needed=round(fresh.hours_needed, 3),
                interval_hours=round(fresh.interval_hours, 3),
                behind=schedule.enabled and fresh.behind,
                capacity_message=message,
            )
        skipped_total: Counter[str] = Counter()
        for counts in self.stats.skipped.values():
            skipped_total.update(counts)
        return SchedulerStatus(
            replica=self.settings.replica_id,
            enabled=self.settings.enabled,
            running=self._running,
            ready=self.ready.is_set(),
            heartbeat_at=from_ms(now_ms),
            started_at=from_ms(self.started_ms),
            last_tick_at=self._dt(self.stats.last_tick_ms),
            checkpoint_at=self._dt(self.stats.checkpoint_ms),
            companies=len(self.registry),
            due=sum(self.stats.due.values()),
            in_flight=sum(in_flight.values()),
            skipped=dict(skipped_total),
            rejected_schedules=self.stats.rejected_schedules,
            undecodable_events=self.stats.undecodable,
            sources=sources,
            capacity_warnings=warnings,
        )

    # --- plumbing --------------------------------------------------------------------------------------

    def _decoded(self, decoded: Decoded | Undecodable) -> Decoded | None:
        if isinstance(decoded, Decoded):
            return decoded
        # Counted and skipped, not dead-lettered: this fold re-reads the log at every start and would
        # dead-letter the same message again each time; the services that consume it own that.
        self.stats.undecodable += 1
        log.warning("event_undecodable", reason=decoded.reason, detail=decoded.detail)
        return None

    async def _bounded(self, calls: Iterable[Awaitable[object]]) -> list[object]:
        limit = asyncio.Semaphore(self.settings.publish_in_flight)

        async def one(call: Awaitable[object]) -> object:
            async with limit:
                return await call

        return list(await asyncio.gather(*(one(c) for c in calls), return_exceptions=True))

    @staticmethod
    def _dt(ms: int | None) -> datetime | None:
        return from_ms(ms) if ms is not None else None

    @staticmethod
    def _iso(ms: int | None) -> str | None:
        return from_ms(ms).isoformat() if ms is not None else None
