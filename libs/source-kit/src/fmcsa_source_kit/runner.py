"""The bus side every source service shares: consume `SyncRequested`, end each in one outcome.

A `fmcsa_events.consume.DurableWorker` pulls the source's durable consumer (replicas share it) and keeps
up to `concurrency` deliveries in flight, each in its own task: it fetches only as many messages as there
are free slots, so no slot waits for a slow neighbour (no batch barrier), and nothing is fetched that
cannot start at once; its in-progress acks (every third of the ack wait) keep a long call's delivery.
Concurrency comes from asyncio, never from FastStream's `max_workers`.

For every delivery of a request (a durable pull consumer per source; replicas share it):
1. an undecodable payload, or a request for another source, goes to the dead-letter stream with its
   reason and is terminated (never redelivered, never silently dropped);
2. a request answered before (a redelivery after a crash between publish and ack) republishes the
   stored outcome with the same event id, which JetStream de-duplicates, and is acked;
3. otherwise: past the deadline -> `timeout` without calling the upstream; else fetch (in-progress acks
   keep a long call alive), store, and `settle` (pure) decides: a delayed nak, or the outcome;
4. the outcome is saved in the source's own database, published (PubAck awaited), then the request is
   acked. A crash anywhere before the ack redelivers the request; step 2 makes that harmless. A source
   with `paginate` (violations) cuts a success's summary to its bounded size first and saves the pages
   of what was cut (`ViolationsListed`) with the outcome, in one transaction: they are published
   after the request's changes and before the outcome, every time the outcome is.
Any exception in our own code becomes a final `SourceFailed(internal)`; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import nats.errors
import stamina
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js.errors import NoStreamResponseError
from prometheus_client import Counter, Gauge, Histogram
from pydantic import JsonValue
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fmcsa_events.bus import Bus, utc_now
from fmcsa_events.consume import DurableWorker
from fmcsa_events.decoder import Undecodable, decode, encode
from fmcsa_events.envelope import Envelope
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    Counts,
    ErrorKind,
    Event,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
)
from fmcsa_events.subjects import subject_for
from fmcsa_events.topology import source_durable
from fmcsa_runtime.database import answers, create_engine
from fmcsa_runtime.deadletter import dead_letter
from fmcsa_runtime.redaction import redact
from fmcsa_runtime.service import Shell
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_source_kit.failpoints import failpoint
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.guard import SuspectDrop
from fmcsa_source_kit.marks import FetchMark, FetchMarks
from fmcsa_source_kit.outbox import changes_for, create_outbox
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.publication import unchanged_since_fetch, within_publication_period
from fmcsa_source_kit.settle import DEADLINE_PASSED, RetryLater, Stored, past_deadline, settle
from fmcsa_source_kit.sync_ages import SYNC_AGE_REFRESH_S, SyncAges

log = structlog.get_logger(__name__)

F = TypeVar("F")

PUBLISH_RETRY_S = 30.0
"""How long an outcome's publish is retried through a stream leader election or a reconnect; far inside
the stream's duplicate window, so a retry of a publish that was stored after all is dropped."""
PUBLISH_WAIT_INITIAL_S = 0.1
PUBLISH_WAIT_MAX_S = 2.0
"""Back-off between an outcome's publish attempts: 0.1 s doubling up to 2 s."""

OUTCOMES = Counter(
    "fmcsa_source_outcomes_total", "Terminal outcomes published", ["source", "outcome", "kind"]
)
RETRIES = Counter(
    "fmcsa_source_retries_total", "Deliveries handed back with a delayed nak", ["source", "kind"]
)
FETCH_SECONDS = Histogram("fmcsa_source_fetch_seconds", "Upstream fetch and store time", ["source"])
IN_FLIGHT = Gauge("fmcsa_source_in_flight", "Deliveries being worked on by this process", ["durable"])


class Delivery(Protocol):
    """One delivery of a request and its acknowledgements (FastStream's `NatsMessage` has this shape)."""

    @property
    def raw_message(self) -> Msg: ...

    async def ack(self) -> None: ...

    async def nack(self, delay: float | None = None) -> None: ...

    async def reject(self) -> None: ...

    async def in_progress(self) -> None: ...


class SourceAdapter(Protocol[F]):
    """What a source package provides: its client and its store, behind two calls."""

    @property
    def configured(self) -> bool: ...

    async def fetch(self, dot: str) -> F | Failure: ...

    async def store(self, fetched: F, request: SyncRequested) -> Stored | Failure: ...

    async def close(self) -> None: ...


class SourceSettings(Protocol):
    @property
    def max_attempts(self) -> int: ...

    @property
    def concurrency(self) -> int: ...

    def resolved_database_url(self) -> str: ...


_metadata = MetaData()
outcome_log = Table(
    "outcome_log",
    _metadata,
    Column("request_id", String(36), primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("headers", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
first_attempts = Table(
    "first_attempts",
    _metadata,
    Column("request_id", String(36), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
)
"""When each request's first attempt started: an outcome's `started_at` (its "took" runs from the first
attempt, not from the last delivery) and every `SyncAttemptFailed` carry it."""
outcome_preludes = Table(
    "outcome_preludes",
    _metadata,
    Column("request_id", String(36), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("subject", String(200), nullable=False),
    Column("headers", Text, nullable=False),
    Column("payload", Text, nullable=False),
)
"""The events saved with an outcome and published before it (a success's pages of rows), in order."""

Paginate = Callable[[SourceSynced], tuple[SourceSynced, tuple[Event, ...]]]
"""A source's cut of a success that would be too large for one event: the outcome with its summary
bounded, and the events that carry the rest (published before it). Pure and deterministic."""


@dataclass(frozen=True, slots=True)
class SavedOutcome:
    subject: str
    headers: dict[str, str]
    payload: bytes
    preludes: tuple[SavedOutcome, ...] = ()
    """Events saved with the outcome, published before it in this order (none for most sources)."""


class OutcomeLog:
    """The outcome of every answered request, in the source's own database, so a redelivered request
    republishes exactly the same event (same id, same content) instead of a second, different one.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def create(self) -> None:
        async with self._engine.begin() as connection:
            await connection.run_sync(_metadata.create_all)
        await create_outbox(self._engine)

    async def get(self, request_id: str) -> SavedOutcome | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(outcome_log.c.subject, outcome_log.c.headers, outcome_log.c.payload).where(
                        outcome_log.c.request_id == request_id
                    )
                )
            ).first()
            if row is None:
                return None
            preludes = await connection.execute(
                select(outcome_preludes.c.subject, outcome_preludes.c.headers, outcome_preludes.c.payload)
                .where(outcome_preludes.c.request_id == request_id)
                .order_by(outcome_preludes.c.position)
            )
            before = tuple(
                SavedOutcome(p.subject, json.loads(p.headers), p.payload.encode()) for p in preludes
            )
        return SavedOutcome(row.subject, json.loads(row.headers), row.payload.encode(), before)

    async def keep_first(self, request_id: str, outcome: SavedOutcome, at: datetime) -> SavedOutcome:
        """Save the outcome and its preludes unless one is saved already (one transaction: both or
        neither); return the one that is kept (the first).
        """
        with contextlib.suppress(IntegrityError):
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(outcome_log).values(
                        request_id=request_id,
                        subject=outcome.subject,
                        headers=json.dumps(outcome.headers),
                        payload=outcome.payload.decode(),
                        created_at=at,
                    )
                )
                if outcome.preludes:
                    await connection.execute(
                        insert(outcome_preludes),
                        [
                            {
                                "request_id": request_id,
                                "position": position,
                                "subject": prelude.subject,
                                "headers": json.dumps(prelude.headers),
                                "payload": prelude.payload.decode(),
                            }
                            for position, prelude in enumerate(outcome.preludes)
                        ],
                    )
        kept = await self.get(request_id)
        assert kept is not None, "an outcome was just saved"
        return kept

    async def first_attempt(self, request_id: str, at: datetime) -> datetime:
        """When the request's first attempt started: `at` on the first call, the saved time after."""
        with contextlib.suppress(IntegrityError):
            async with self._engine.begin() as connection:
                await connection.execute(insert(first_attempts).values(request_id=request_id, started_at=at))
        async with self._engine.connect() as connection:
            saved: datetime = (
                await connection.execute(
                    select(first_attempts.c.started_at).where(first_attempts.c.request_id == request_id)
                )
            ).scalar_one()
        return saved if saved.tzinfo is not None else saved.replace(tzinfo=UTC)  # SQLite drops the zone


async def publish_outcome(bus: Bus, saved: SavedOutcome) -> None:
    """Publish a saved outcome through `Bus.publish_saved` (byte for byte, its PubAck awaited); JetStream
    drops a repeat of its event id.

    While a cluster elects a new stream leader (a few seconds) a publish finds no responder or times
    out: stamina retries it with the same event id for up to `PUBLISH_RETRY_S` (one
    `stamina.retry_scheduled` line each, `retrying=outcome_publish`), so a failover delays the outcome
    by seconds instead of leaving the request unacked until its ack wait runs out.
    """
    with structlog.contextvars.bound_contextvars(retrying="outcome_publish"):
        async for attempt in stamina.retry_context(
            on=(NoRespondersError, NoStreamResponseError, TimeoutError),
            attempts=None,
            timeout=PUBLISH_RETRY_S,
            wait_initial=PUBLISH_WAIT_INITIAL_S,
            wait_max=PUBLISH_WAIT_MAX_S,
            wait_jitter=0.0,
        ):
            with attempt:
                await bus.publish_saved(saved.subject, saved.payload, saved.headers)


class SourceHandler(Generic[F]):
    """The steps for one delivery (see the module docstring); no business `if` lives here."""

    def __init__(
        self,
        *,
        source: SourceKey,
        adapter: SourceAdapter[F],
        bus: Bus,
        outcomes: OutcomeLog,
        nc: NatsClient,
        max_attempts: int,
        clock: Callable[[], datetime] = utc_now,
        ages: SyncAges | None = None,
        paginate: Paginate | None = None,
    ) -> None:
        self.paginate = paginate
        self.source = source
        self.adapter = adapter
        self.bus = bus
        self.outcomes = outcomes
        self.ages = ages
        self.nc = nc
        self.max_attempts = max_attempts
        self.clock = clock
        self.service = f"source-{source}"

    async def on_sync_requested(self, msg: Delivery) -> None:
        raw = msg.raw_message
        decoded = decode(raw.headers, raw.data)
        if isinstance(decoded, Undecodable):
            await self._dead_letter(msg, decoded.reason.value, decoded.detail)
            return
        request = decoded.event
        if not isinstance(request, SyncRequested) or request.source != self.source:
            await self._dead_letter(msg, "unexpected", f"{decoded.envelope.type} on {raw.subject}")
            return
        with structlog.contextvars.bound_contextvars(
            request_id=str(request.request_id), dot=request.dot, source=str(self.source)
        ):
            try:
                await self._handle(msg, request, decoded.envelope)
            except Exception as error:  # our bug: answer it as internal rather than lose the request
                log.exception("sync_internal_error")
                await self._finish(msg, self._internal(request, error), decoded.envelope)

    async def _handle(self, msg: Delivery, request: SyncRequested, cause: Envelope) -> None:
        if saved := await self.outcomes.get(str(request.request_id)):
            await self._publish_changes(request, cause)
            for prelude in saved.preludes:
                await self._publish(prelude)
            await self._publish(saved)
            await msg.ack()
            log.info("sync_outcome_republished")
            return
        attempt = msg.raw_message.metadata.num_delivered or 1
        started = await self.outcomes.first_attempt(str(request.request_id), self.clock())
        result: Stored | Failure
        if past_deadline(request, self.clock()):
            result = DEADLINE_PASSED
        else:
            with FETCH_SECONDS.labels(str(self.source)).time():
                result = await self._fetch_and_store(request)
        decision = settle(
            request,
            result,
            attempt=attempt,
            max_attempts=self.max_attempts,
            started_at=started,
            now=self.clock(),
        )
        if isinstance(decision, RetryLater):
            delay = decision.delay_s * random.uniform(0.8, 1.2)  # jitter spreads a burst of retries
            RETRIES.labels(str(self.source), decision.failure.kind.value).inc()
            log.info(
                "sync_retry_later", kind=decision.failure.kind.value, attempt=attempt, delay_s=round(delay, 2)
            )
            await self._report_retry(
                request, decision, attempt=attempt, delay_s=delay, first=started, cause=cause
            )
            await msg.nack(delay=delay)
            return
        await self._finish(msg, decision, cause)

    async def _report_retry(
        self,
        request: SyncRequested,
        decision: RetryLater,
        *,
        attempt: int,
        delay_s: float,
        first: datetime,
        cause: Envelope,
    ) -> None:
        """Say that the request waits for its next attempt (`SyncAttemptFailed`), so the status shows attempt
        n of m instead of a silent "running". Progress, not an outcome: if it cannot be published the
        delivery is still handed back, and the terminal outcome says what happened in the end.
        """
        progress = SyncAttemptFailed(
            request_id=request.request_id,
            dot=request.dot,
            source=request.source,
            attempt=attempt,
            max_attempts=self.max_attempts,
            kind=decision.failure.kind,
            message=decision.failure.message[:500],
            retry_at=self.clock() + timedelta(seconds=delay_s),
            first_attempt_at=first,
        )
        try:
            await self.bus.publish(progress, cause=cause)
        except (NoRespondersError, NoStreamResponseError, TimeoutError, nats.errors.Error) as error:
            log.warning("sync_retry_not_reported", error=type(error).__name__)

    async def _fetch_and_store(self, request: SyncRequested) -> Stored | Failure:
        """Fetch and store; the worker's in-progress acks keep a long call's delivery alive."""
        fetched = await self.adapter.fetch(request.dot)
        if isinstance(fetched, Failure):
            return fetched
        stored = await self.adapter.store(fetched, request)
        failpoint("source.after_store")  # tests crash here: rows and changes committed, none published
        return stored

    async def _finish(self, msg: Delivery, outcome: SourceSynced | SourceFailed, cause: Envelope) -> None:
        pages: tuple[Event, ...] = ()
        if isinstance(outcome, SourceSynced) and self.paginate is not None:
            outcome, pages = self.paginate(outcome)
        envelope = self.bus.envelope(outcome, cause=cause)
        preludes = tuple(
            SavedOutcome(subject_for(page), self.bus.envelope(page, cause=cause).to_headers(), encode(page))
            for page in pages
        )
        mine = SavedOutcome(subject_for(outcome), envelope.to_headers(), encode(outcome), preludes)
        # if an earlier delivery saved an outcome first, that one is published again, never a second
        kept = await self.outcomes.keep_first(str(outcome.request_id), mine, self.clock())
        await self._publish_changes(outcome, cause)
        for prelude in kept.preludes:
            await self._publish(prelude)
        await self._publish(kept)
        failpoint("source.after_publish")  # tests crash here: published, not yet acked
        await msg.ack()
        kind = outcome.kind.value if isinstance(outcome, SourceFailed) else ""
        OUTCOMES.labels(str(self.source), outcome.TYPE, kind).inc()
        log.info("sync_finished", outcome=outcome.TYPE, kind=kind or None, attempts=outcome.attempts)
        await self._note_age(outcome)

    async def _note_age(self, outcome: SourceSynced | SourceFailed) -> None:
        """Feed the oldest-sync-age gauge (`fmcsa_source_kit.sync_ages`). The request is answered and
        acked already: a store that refuses this write costs one stale figure, never the outcome.
        """
        if self.ages is None:
            return
        try:
            await self.ages.answered(outcome.dot, self.clock(), synced=isinstance(outcome, SourceSynced))
        except Exception as error:  # a metric's bookkeeping must not fail a finished request
            log.warning("sync_age_not_recorded", error=f"{type(error).__name__}: {error}"[:300])

    async def _publish_changes(
        self, request: SyncRequested | SourceSynced | SourceFailed, cause: Envelope
    ) -> None:
        """Publish every change the store recorded for this request (before its outcome, so a
        consumer that sees the outcome has seen the changes); repeats are dropped by their ids.
        """
        for change in await changes_for(self.outcomes.engine, request.request_id):
            envelope = self.bus.envelope(change, cause=cause)
            # occurred-at is when the change was observed, so a republished change is the same message
            envelope = envelope.model_copy(update={"occurred_at": change.observed_at})
            await self.bus.publish(change, envelope=envelope)

    async def _publish(self, saved: SavedOutcome) -> None:
        await publish_outcome(self.bus, saved)

    def _internal(self, request: SyncRequested, error: Exception) -> SourceFailed:
        now = self.clock()
        return SourceFailed(
            request_id=request.request_id,
            dot=request.dot,
            source=request.source,
            kind=ErrorKind.INTERNAL,
            retryable=False,
            attempts=1,
            message="the source service failed on this request (a bug); see its logs",
            detail=redact(f"{type(error).__name__}: {error}")[:2000],
            finished_at=now,
        )

    async def _dead_letter(self, msg: Delivery, reason: str, detail: str) -> None:
        raw = msg.raw_message
        await dead_letter(
            self.nc.jetstream(),
            service=self.service,
            reason=reason,
            detail=detail,
            subject=raw.subject,
            data=raw.data,
            headers=raw.headers,
            stream_seq=raw.metadata.sequence.stream,
        )
        await msg.reject()
        log.warning("dead_lettered", reason=reason, detail=detail[:200])


class SourceWorker:
    """A source's part of one run (`fmcsa_runtime.service.Worker`): the pace bound to the bus, the
    outcome log, the adapter, and a `DurableWorker` on the source's durable consumer (manual acks), all
    over the shell's connection.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        source: SourceKey,
        adapter_factory: Callable[[], Awaitable[SourceAdapter[Any]]],
        clock: Callable[[], datetime],
        paces: Sequence[UpstreamPace],
        paginate: Paginate | None = None,
    ) -> None:
        self.paginate = paginate
        self.settings = settings
        self.source = source
        self.adapter_factory = adapter_factory
        self.clock = clock
        self.paces = paces
        self.bound: list[UpstreamPace] = []
        self.engine: AsyncEngine | None = None
        self.adapter: SourceAdapter[Any] | None = None
        self.runner: DurableWorker | None = None
        self.ages: SyncAges | None = None
        self.ages_task: asyncio.Task[None] | None = None

    async def start(self, nc: NatsClient) -> None:
        source_settings: SourceSettings = self.settings  # type: ignore[assignment]  # checked by the Protocol
        service = f"source-{self.source}"
        for each in self.paces:
            await each.start(nc.jetstream())
            self.bound.append(each)
        self.engine = create_engine(source_settings.resolved_database_url())
        outcomes = OutcomeLog(self.engine)
        await outcomes.create()
        self.ages = SyncAges(self.engine)
        await self.ages.create()
        self.adapter = await self.adapter_factory()
        if not self.adapter.configured:
            log.warning(
                "source_not_configured",
                source=str(self.source),
                hint="set the credential; every request is answered not_configured until then",
            )
        handler = SourceHandler(
            source=self.source,
            adapter=self.adapter,
            bus=Bus(nc.jetstream(), producer=service, clock=self.clock),
            outcomes=outcomes,
            nc=nc,
            max_attempts=source_settings.max_attempts,
            clock=self.clock,
            ages=self.ages,
            paginate=self.paginate,
        )
        durable = source_durable(self.source)
        runner = DurableWorker(
            js=nc.jetstream(),
            durable=durable,
            handle=handler.on_sync_requested,
            concurrency=source_settings.concurrency,
            heartbeat_s=self.settings.source_ack_wait_s / 3,
            on_in_flight=IN_FLIGHT.labels(durable).set,
        )
        await runner.start()
        self.runner = runner
        self.ages_task = asyncio.create_task(self._export_ages(self.ages), name="sync-ages")

    async def _export_ages(self, ages: SyncAges) -> None:
        """Refresh the oldest-sync-age gauges every `SYNC_AGE_REFRESH_S`; a failed read skips one turn."""
        while True:
            try:
                await ages.export(str(self.source), self.clock())
            except Exception as error:  # the store may be away for a while: try next turn
                log.warning("sync_age_not_exported", error=f"{type(error).__name__}: {error}"[:300])
            await asyncio.sleep(SYNC_AGE_REFRESH_S)

    async def stop(self, grace_s: float) -> None:
        if self.ages_task is not None:
            self.ages_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ages_task
        if self.runner is not None:
            # leave a few seconds of the grace period for closing the clients and the connection
            await self.runner.stop(budget_s=max(grace_s - 3.0, grace_s / 2))
        if self.adapter is not None:
            await self.adapter.close()
        for bound in self.bound:
            await bound.stop()
        if self.engine is not None:
            await self.engine.dispose()

    async def ready(self) -> bool:
        """The pull loop runs and the source's database answers."""
        return (
            self.runner is not None
            and self.runner.running
            and self.engine is not None
            and await answers(self.engine)
        )


def create_source_app(
    settings: ServiceSettings,
    *,
    source: SourceKey,
    adapter_factory: Callable[[], Awaitable[SourceAdapter[Any]]],
    clock: Callable[[], datetime] = utc_now,
    pace: UpstreamPace | Sequence[UpstreamPace] | None = None,
    paginate: Paginate | None = None,
) -> Shell:
    """Wire one source service: a `SourceWorker` in the worker shell (`fmcsa_runtime.service.Shell`: the
    one NATS connection, health, readiness, metrics, signals). `pace`, the one the adapter's client
    spends (or one per upstream host, for a source that calls several), is bound to the bus at start
    (shared with the source's other replicas, `fmcsa_source_kit.pacing`) and unbound at the end.

    `settings` must also satisfy `SourceSettings` (max_attempts, concurrency, resolved_database_url).
    `paginate` cuts a success too large for one event (see `Paginate`).
    """
    paces: tuple[UpstreamPace, ...] = (
        () if pace is None else (pace,) if isinstance(pace, UpstreamPace) else tuple(pace)
    )
    worker = SourceWorker(
        settings, source=source, adapter_factory=adapter_factory, clock=clock, paces=paces, paginate=paginate
    )
    return Shell(settings, name=f"source-{source}", worker=worker)


F_co = TypeVar("F_co", covariant=True)
F_contra = TypeVar("F_contra", contravariant=True)


class _Client(Protocol[F_co]):
    @property
    def configured(self) -> bool: ...

    async def fetch(self, dot: str) -> F_co | Failure: ...

    async def aclose(self) -> None: ...


class _Fetched(Protocol):
    @property
    def retrieved_at(self) -> datetime: ...

    @property
    def upstream_as_of(self) -> datetime | None: ...


class _Store(Protocol[F_contra]):
    async def upsert(self, fetched: F_contra, *, request_id: UUID) -> Counts: ...

    async def close(self) -> None: ...


FetchedT = TypeVar("FetchedT", bound=_Fetched)


@dataclass(frozen=True, slots=True)
class FreshnessCheck(Generic[FetchedT]):
    """How a source tells that a carrier's held data is still what its upstream publishes: when the
    upstream last published (None: cannot tell) and what the store holds for a carrier (None: nothing).
    """

    published_at: Callable[[], Awaitable[datetime | None]]
    held: Callable[[str], Awaitable[FetchedT | None]]
    close: Callable[[], Awaitable[None]] | None = None
    """Closes what `published_at` holds open (its HTTP client), with the adapter."""


@dataclass(frozen=True, slots=True)
class Cadence(Generic[FetchedT]):
    """How a source whose upstream has neither a change signal nor conditional requests, only a
    publication cadence (SAFER summaries, authority and insurance: daily), tells that a carrier is fresh:
    fetched successfully within the current publication `period`
    (`fmcsa_source_kit.publication.within_publication_period`). `held` gives what the store holds for a
    carrier as a fetch of its last successful fetch's mark (None: nothing held).
    """

    period: timedelta
    held: Callable[[str, FetchMark], Awaitable[FetchedT | None]]


@dataclass(frozen=True, slots=True)
class ChangeGate(Generic[FetchedT]):
    """How a source whose upstream publishes which carriers changed (the authority source: FMCSA's daily
    difference datasets) tells that a carrier is fresh. `decide(dot, mark)` gives why the carrier must be
    fetched (None: it need not) and the gate's position to remember with a fetch (the mark's
    `published_at`); `held` as for `Cadence`; `close` stops what the gate runs.
    """

    decide: Callable[[str, FetchMark | None], Awaitable[tuple[object | None, datetime | None]]]
    held: Callable[[str, FetchMark], Awaitable[FetchedT | None]]
    close: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Unchanged(Generic[FetchedT]):
    """What a freshness check gives instead of a fetch: the data held, still what the upstream has."""

    held: FetchedT


class ClientStoreAdapter(Generic[FetchedT]):
    """A `SourceAdapter` from a source package's client, store and `summarize`.

    With `freshness` (a source whose upstream says when its data last changed, e.g. a Socrata
    dataset's `rowsUpdatedAt`), a carrier whose held data is at least that recent is not fetched: the
    request ends `SourceSynced` with `checked_unchanged`, zero counts and the held data's times and
    summary. When the check cannot tell (it failed, or nothing is held), the carrier is fetched.

    With `marks` (`fmcsa_source_kit.marks`: each carrier's last successful fetch, in the source's own
    database, so replicas share it and a restart keeps it), written after every fetch the store took:
    - `since_fetch` (a source whose own API has no change signal, but whose upstream publishes
      elsewhere when it changed: csa's BASICs follow the SMS run DataHub publishes): a carrier is not
      fetched again until a publication newer than the one seen just before its last successful fetch
      appears (`fmcsa_source_kit.publication.unchanged_since_fetch`);
    - `cadence` (an upstream with only a publication cadence): a carrier fetched successfully within the
      current publication period is not fetched again;
    - `changes` (an upstream that lists the carriers that changed): a carrier the gate does not name for
      a fetch is not fetched, and a fetch remembers the gate's position.
    Each ends `checked_unchanged` as above, without an upstream call (bar `since_fetch`'s one metadata
    call per `ttl_s`).
    """

    def __init__(
        self,
        client: _Client[FetchedT],
        store: _Store[FetchedT],
        summarize: Callable[[FetchedT], dict[str, JsonValue]],
        *,
        freshness: FreshnessCheck[FetchedT] | None = None,
        since_fetch: FreshnessCheck[FetchedT] | None = None,
        cadence: Cadence[FetchedT] | None = None,
        changes: ChangeGate[FetchedT] | None = None,
        marks: FetchMarks | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if (since_fetch is not None or cadence is not None or changes is not None) and marks is None:
            raise ValueError("since_fetch, cadence and changes need the fetch marks")
        self._client = client
        self._store = store
        self._summarize = summarize
        self._freshness = freshness
        self._since_fetch = since_fetch
        self._cadence = cadence
        self._changes = changes
        self._marks = marks
        self._clock = clock
        self._pending: dict[str, datetime] = {}

    @property
    def configured(self) -> bool:
        return self._client.configured

    async def fetch(self, dot: str) -> FetchedT | Unchanged[FetchedT] | Failure:
        if self._freshness is not None and (published := await self._freshness.published_at()) is not None:
            held = await self._freshness.held(dot)
            if held is not None and held.upstream_as_of is not None and published <= held.upstream_as_of:
                return Unchanged(held)
        mark = None if self._marks is None else await self._marks.get(dot)
        changes = self._changes
        if changes is not None:
            reason, position = await changes.decide(dot, mark)
            if reason is None and mark is not None and (held := await changes.held(dot, mark)) is not None:
                return Unchanged(held)
            if position is not None:
                self._pending[dot] = position
        cadence = self._cadence
        if (
            cadence is not None
            and mark is not None
            and within_publication_period(mark.fetched_at, self._clock(), cadence.period)
            and (held := await cadence.held(dot, mark)) is not None
        ):
            return Unchanged(held)
        since = self._since_fetch
        if since is not None and (published := await since.published_at()) is not None:
            if unchanged_since_fetch(published, None if mark is None else mark.published_at):
                held = await since.held(dot)
                if held is not None:
                    return Unchanged(held)
            self._pending[dot] = published
        return await self._client.fetch(dot)

    async def store(
        self, fetched: FetchedT | Unchanged[FetchedT], request: SyncRequested
    ) -> Stored | Failure:
        if isinstance(fetched, Unchanged):
            held = fetched.held
            return Stored(
                counts=Counts(),
                retrieved_at=held.retrieved_at,
                upstream_as_of=held.upstream_as_of,
                summary=self._summarize(held),
                checked_unchanged=True,
            )
        published = self._pending.pop(request.dot, None)
        try:
            counts = await self._store.upsert(fetched, request_id=request.request_id)
        except SuspectDrop as drop:  # the store kept what it had (fmcsa_source_kit.guard)
            return drop.failure()
        if self._marks is not None:
            mark = FetchMark(fetched.retrieved_at, fetched.upstream_as_of, published)
            await self._marks.remember(request.dot, mark)
        return Stored(
            counts=counts,
            retrieved_at=fetched.retrieved_at,
            upstream_as_of=fetched.upstream_as_of,
            summary=self._summarize(fetched),
        )

    async def close(self) -> None:
        for check in (self._freshness, self._since_fetch, self._changes):
            if check is not None and check.close is not None:
                await check.close()
        await self._client.aclose()
        await self._store.close()
