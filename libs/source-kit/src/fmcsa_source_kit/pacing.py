"""How every source client paces its upstream: an adaptive pace, shared by the source's replicas, spent
by a token bucket at the moment each request is written.

The upstreams publish no rate limit; the sandbox (our model of them) counts calls in a leaky bucket of
one second's worth, capacity `rate`, draining at `rate` per second. Three layers keep the clients inside
it (ARCHITECTURE.md, "Upstream pace", has the measurements behind each):

1. **Headroom** (`client_bucket`). A client with exactly the upstream's bucket fills it to the brim, and
   then any call that reaches the upstream sooner after its predecessor than it left the client is
   refused (a fresh connection is slower than a kept one; on a loaded machine either process can be
   descheduled and then handle its queue at once). So the burst is held back by `burst_s` seconds'
   worth of calls (capacity `rate * (1 - burst_s)`): a call may arrive up to `burst_s` late against the
   one before without a 429; the bucket refills `DRAIN_HEADROOM` slower than the rate (99% in the long
   run); where the held-back bucket would hold less than one call (rates up to `1 / (1 - burst_s)`), it
   holds exactly one and calls are spaced `1 / rate + burst_s` apart, so a call may be late by the same
   `burst_s` there too (a spacing of `1 / rate + 0.05` let a 1/s source be refused once in a while on a
   loaded machine: the sandbox's inspections test saw a 429 at load average 8).
2. **Late tokens** (`TokenBucket`, `UpstreamPace.call`). A call waits at a gate until a token is free
   and reserves it, then takes it in httpcore's `trace` hook at `send_request_headers.started`, right
   before the request's bytes are written (after the connection is checked out or opened). The bucket
   refills lazily, when a token is taken, and never above its capacity, so a loop that was blocked
   releases at most the capacity at once, never a token per call that waited through the block.
3. **AIMD** (`PaceState`, `throttled`, `raised`). The pace starts at the configured ceiling. A 429, or
   any answer with `Retry-After`, halves it (once per congestion: a 429 to a call sent before the last
   decrease was sent at the old pace and is already answered); each `increase_interval_s` with clean
   answers and no throttle raises it by `increase_share` (10%) of the ceiling, up to the ceiling, but for
   `memory_s` after a decrease only up to 90% of the pace at which the upstream pushed back: the pace
   settles just under the upstream's limit and probes above it once a minute.

**Shared by the replicas** (`UpstreamPace.start`): the pace is per (source, upstream: `pace_key`), kept as a
JSON document in the JetStream KV bucket `fmcsa_pace` and changed only by compare-and-set on its
revision, so N replicas make one decrease per congestion and one increase per interval, not N. Each
replica heartbeats its own key in `fmcsa_pace_replicas` (a bucket whose TTL drops a dead replica's key)
and spends `pace / live replicas`: N replicas together never send more than the one shared pace. A
replica reads the document every `sync_s` and counts the live replicas every `heartbeat_s`; without the
bus (the benchmark's sequential clients, unit tests) the same pace runs in the process alone. The
gateway reads both buckets for the admin page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import stamina
import structlog
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError, NoStreamResponseError
from nats.js.kv import KeyValue
from prometheus_client import Counter, Gauge

from fmcsa_events.topology import PACE_BUCKET, PACE_REPLICAS_BUCKET, Topology

log = structlog.get_logger(__name__)

BURST_S = 0.25
"""Seconds' worth of calls held back from the one-second burst: the arrival jitter absorbed."""
DRAIN_HEADROOM = 0.01
"""Share of the rate held back in the long run: the bucket drains at 99% of the rate."""

REPLICAS_TTL_S = Topology.pace_replicas_ttl_s

START_WAIT_S = 30.0
"""How long `start` waits for the pace buckets to answer (a stream leader election) before it gives up."""
"""How long a replica's heartbeat keeps it counted (the TTL of `fmcsa_pace_replicas`); a replica
heartbeats every third of it."""

PACE = Gauge(
    "fmcsa_upstream_pace_per_s",
    "Upstream calls per second allowed: the shared pace of all replicas, and this replica's share",
    ["source", "scope"],
)
THROTTLED = Counter(
    "fmcsa_upstream_throttled_total", "Upstream answers that were a 429 or carried Retry-After", ["source"]
)
WAITED = Counter(
    "fmcsa_upstream_pace_wait_seconds_total", "Seconds calls spent waiting for the pace", ["source"]
)
REPLICAS = Gauge("fmcsa_upstream_pace_replicas", "Live replicas sharing the pace", ["source"])

PACE_NOTE = (
    " The pace starts here, is shared by all replicas of the source (each spends `pace / live replicas`),"
    ' halves on a 429 or `Retry-After` and climbs back (ARCHITECTURE.md, "Upstream pace").'
)
"""What every source's `RATE_PER_S` setting says of the pace (its description ends with it)."""


def client_bucket(rate_per_s: float, *, burst_s: float = BURST_S) -> tuple[float, float]:
    """`(capacity, seconds to refill it)` of a client bucket for an upstream limited to `rate_per_s` in
    a bucket of one second's worth (the shape of aiolimiter's `AsyncLimiter(max_rate, time_period)`).
    A bucket grants whole calls only, so it holds at least one.
    """
    if rate_per_s <= 0:
        raise ValueError(f"a rate limit must be positive, got {rate_per_s}")
    if not 0 <= burst_s < 1:
        raise ValueError(f"burst_s is a share of one second, got {burst_s}")
    capacity = rate_per_s * (1.0 - burst_s)
    if capacity >= 1.0:
        return capacity, capacity / (rate_per_s * (1.0 - DRAIN_HEADROOM))
    return 1.0, 1.0 / rate_per_s + burst_s


# --- the token bucket (pure: every method takes the time) -------------------------------------------


class TokenBucket:
    """Tokens refilled lazily, when asked, at `refill_per_s`, never above `capacity`; starts full."""

    def __init__(self, capacity: float, refill_per_s: float, now: float) -> None:
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.tokens = capacity
        self._last = now

    @classmethod
    def for_rate(cls, rate_per_s: float, now: float, *, burst_s: float = BURST_S) -> TokenBucket:
        capacity, period = client_bucket(rate_per_s, burst_s=burst_s)
        return cls(capacity, capacity / period, now)

    def _refill(self, now: float) -> None:
        if now > self._last:
            self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.refill_per_s)
            self._last = now

    def wait_s(self, now: float, *, reserved: int = 0) -> float:
        """Seconds until one token is free beyond `reserved` ones (0 when one is free now)."""
        self._refill(now)
        missing = reserved + 1 - self.tokens
        return max(0.0, missing / self.refill_per_s)

    def take(self, now: float) -> None:
        """Take one token; the level may go below zero (a call sent without waiting, see `call`)."""
        self._refill(now)
        self.tokens -= 1.0

    def reshape(self, rate_per_s: float, now: float, *, burst_s: float = BURST_S) -> None:
        """Refill at the old rate up to `now`, then switch to `rate_per_s` (tokens above the new
        capacity are dropped).
        """
        self._refill(now)
        capacity, period = client_bucket(rate_per_s, burst_s=burst_s)
        self.capacity, self.refill_per_s = capacity, capacity / period
        self.tokens = min(self.tokens, capacity)

    def empty(self, now: float) -> None:
        """Drop every token: after a 429 the upstream's bucket is full, the next call waits a slot."""
        self._refill(now)
        self.tokens = min(self.tokens, 0.0)


# --- AIMD (pure) ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AimdPolicy:
    """How the pace moves; every share is of the configured ceiling."""

    decrease: float = 0.5
    """A throttle multiplies the pace by this."""
    increase_share: float = 0.1
    """Added per interval of clean answers: from a halving back to 90% of the pace in 4 s (one 429
    caused by jitter, not by the rate, costs about two seconds' worth of calls)."""
    increase_interval_s: float = 1.0
    approach: float = 0.9
    """Increases stop at this share of the pace the upstream last pushed back at..."""
    memory_s: float = 60.0
    """...for this long after that decrease; then it is forgotten and the pace climbs again (probing
    whether the upstream's limit went up; a 429 there costs one more halving, once a `memory_s`)."""
    floor_share: float = 0.25
    """The pace never drops below this share of the ceiling (nor below `floor_min_per_s`). A 429 says
    nothing of why it came: an upstream that pushes back now and then for its own reasons (load, a
    deploy) makes every halving also lower where the pace stops climbing, and with 5% such 429s a pace
    learned down to 2% of the ceiling sent 0.9 calls/s where 32/s were allowed (R4 stalled; the
    simulation in test_pace_aimd.py). A quarter of the ceiling keeps a source useful whatever the noise;
    an upstream whose real limit is below it answers more 429s, each honoured (`Retry-After`) and counted
    (`fmcsa_upstream_throttled_total`): set `RATE_PER_S` near the real limit."""
    floor_min_per_s: float = 0.05

    def floor(self, ceiling: float) -> float:
        return min(ceiling, max(self.floor_min_per_s, ceiling * self.floor_share))


@dataclass(frozen=True)
class PaceState:
    """The shared pace of one (source, upstream host). Times are wall-clock seconds (replicas on
    different hosts compare them), `throttled` counts every 429 or Retry-After seen by any replica.
    """

    rate: float
    ceiling: float
    limit_seen: float | None = None
    changed_at: float = 0.0
    decreased_at: float = 0.0
    throttled: int = 0

    @classmethod
    def initial(cls, ceiling: float, now: float) -> PaceState:
        return cls(rate=ceiling, ceiling=ceiling, changed_at=now)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, *, ceiling: float, now: float) -> PaceState:
        """Read a stored document under this replica's `ceiling` (a lowered setting caps the pace at
        once); an unreadable one starts afresh.
        """
        try:
            doc = json.loads(raw)
            state = cls(
                rate=float(doc["rate"]),
                ceiling=ceiling,
                limit_seen=None if doc.get("limit_seen") is None else float(doc["limit_seen"]),
                changed_at=float(doc.get("changed_at", 0.0)),
                decreased_at=float(doc.get("decreased_at", 0.0)),
                throttled=int(doc.get("throttled", 0)),
            )
        except (ValueError, TypeError, KeyError):
            return cls.initial(ceiling, now)
        if not math.isfinite(state.rate) or state.rate <= 0:
            return cls.initial(ceiling, now)
        return replace(state, rate=min(state.rate, ceiling))


def throttled(state: PaceState, policy: AimdPolicy, *, now: float, sent_at: float) -> PaceState:
    """The pace after a 429 (or a Retry-After) to a call sent at `sent_at`: halved, unless the call
    left before the last decrease (that congestion is answered already); counted either way.
    """
    counted = replace(state, throttled=state.throttled + 1)
    if sent_at < state.decreased_at:
        return counted
    rate = max(policy.floor(state.ceiling), state.rate * policy.decrease)
    return replace(counted, rate=rate, limit_seen=state.rate, changed_at=now, decreased_at=now)


def raised(state: PaceState, policy: AimdPolicy, *, now: float) -> PaceState:
    """The pace after clean answers up to `now`: one additive step per `increase_interval_s` since the
    last change, up to the ceiling, and for `memory_s` after a decrease no higher than `approach` x the
    pace the upstream pushed back at.
    """
    if state.rate >= state.ceiling or now - state.changed_at < policy.increase_interval_s:
        return state
    rate = state.rate + policy.increase_share * state.ceiling
    limit_seen = state.limit_seen
    if limit_seen is not None and now - state.decreased_at >= policy.memory_s:
        limit_seen = None
    if limit_seen is not None:
        knee = policy.approach * limit_seen
        if state.rate >= knee:
            return state
        rate = min(rate, knee)
    return replace(state, rate=min(state.ceiling, rate), limit_seen=limit_seen, changed_at=now)


def is_throttle(status: int, headers: Mapping[str, str]) -> bool:
    """A 429, or any answer with `Retry-After` (a 503 asking to come back later)."""
    return status == 429 or "retry-after" in {name.lower() for name in headers}


def pace_key(source: str, base_url: str, upstream: str | None = None) -> str:
    """The KV key of a source's pace towards `base_url`: its host and port, and its path when it has one
    (`csa.mobile_fmcsa_dot_gov_qc_services`, `violations.data_transportation_gov`), after the `upstream`
    label a source gives its second upstream (`inspections.datahub-data_transportation_gov`). Both keep
    apart two upstreams that one host serves: the sandbox serves QCMobile under `/qc/services`, and
    SaferWebAPI and DataHub at its root; keyed by host alone a source's two paces counted each other as
    replicas and each spent half (the full bench's authority and inspections ran at half their rates).
    """
    parts = urlsplit(base_url)
    place = parts.hostname or "unknown"
    if parts.port is not None:
        place = f"{place}:{parts.port}"
    path = parts.path.strip("/")
    if path:
        place = f"{place}/{path}"
    if upstream:
        place = f"{upstream}-{place}"
    return f"{_token(source)}.{_token(place)}"


def _token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


# --- the pace of one source in one process -------------------------------------------------------


class PacedCall:
    """One upstream call's use of the pace: pass `trace` as httpx's `extensions={"trace": ...}` so the
    token is taken right before the request is written, then report the answer with `answered`.
    """

    __slots__ = ("_pace", "_reserved", "sent_at")

    def __init__(self, pace: UpstreamPace) -> None:
        self._pace = pace
        self._reserved = True
        self.sent_at: float | None = None

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith("send_request_headers.started") and self._reserved:
            self._reserved = False
            await self._pace._spend()
            self.sent_at = self._pace._wall()

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        if self._reserved:  # sent by a transport without the trace hook (httpx.MockTransport)
            self._reserved = False
            self._pace._spend_now()
            self.sent_at = self._pace._wall()
        self._pace._answered(
            self.sent_at if self.sent_at is not None else self._pace._wall(), status, headers
        )

    def _release(self) -> None:
        if self._reserved:  # never sent (the connection failed first): its reservation is returned
            self._reserved = False
            self._pace._reserved -= 1


class UpstreamPace:
    """The adaptive pace of one source towards one upstream host (see the module docstring).

    `call()` is the only thing a client uses; `start(js)` / `stop()` bind it to the bus (the service
    does that), without which it paces this process alone.
    """

    def __init__(
        self,
        *,
        source: str,
        base_url: str,
        ceiling: float,
        burst_s: float = BURST_S,
        policy: AimdPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        replica: str | None = None,
        upstream: str | None = None,
    ) -> None:
        if ceiling <= 0:
            raise ValueError(f"a rate limit must be positive, got {ceiling}")
        self.source = source
        self.key = pace_key(source, base_url, upstream)
        self.replica = replica or uuid.uuid4().hex[:12]
        self.policy = policy or AimdPolicy()
        self._burst_s = burst_s
        self._monotonic, self._wall, self._sleep = monotonic, wall, sleep
        self.state = PaceState.initial(ceiling, wall())
        self.replicas = 1
        self.waited_s = 0.0
        self._bucket = TokenBucket.for_rate(ceiling, monotonic(), burst_s=burst_s)
        self._gate = asyncio.Lock()
        self._reserved = 0
        # bound to the bus: the revision the local state came from, what is still to be written
        self._js: JetStreamContext | None = None
        self._pace_kv: KeyValue | None = None
        self._replicas_kv: KeyValue | None = None
        self._revision: int | None = None
        self._pending: list[tuple[float, float]] = []  # (sent_at, seen_at) of throttles not yet shared
        self._clean = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._publish_gauges()

    # the client's side ---------------------------------------------------------------------------

    @property
    def share_per_s(self) -> float:
        """This replica's part of the shared pace."""
        return self.state.rate / max(1, self.replicas)

    @contextlib.asynccontextmanager
    async def call(self) -> AsyncIterator[PacedCall]:
        """Wait until a token is free and reserve it; the call takes it when it is written."""
        async with self._gate:
            while True:
                wait = self._bucket.wait_s(self._monotonic(), reserved=self._reserved)
                if wait <= 0:
                    break
                await self._waited(wait)
            self._reserved += 1
        paced = PacedCall(self)
        try:
            yield paced
        finally:
            paced._release()

    async def _spend(self) -> None:
        """Take the reserved token now, waiting if the pace was lowered since it was reserved."""
        self._reserved -= 1
        while (wait := self._bucket.wait_s(self._monotonic(), reserved=self._reserved)) > 0:
            await self._waited(wait)
        self._bucket.take(self._monotonic())

    def _spend_now(self) -> None:
        self._reserved -= 1
        self._bucket.take(self._monotonic())

    async def _waited(self, seconds: float) -> None:
        began = self._monotonic()
        await self._sleep(seconds)
        spent = self._monotonic() - began
        self.waited_s += spent
        WAITED.labels(self.source).inc(spent)

    def _answered(self, sent_at: float, status: int, headers: Mapping[str, str]) -> None:
        now = self._wall()
        if is_throttle(status, headers):
            THROTTLED.labels(self.source).inc()
            before = self.state.rate
            self._adopt(throttled(self.state, self.policy, now=now, sent_at=sent_at))
            self._bucket.empty(self._monotonic())
            log.info("upstream_throttled", source=self.source, status=status, pace_per_s=round(before, 3))
            if self._pace_kv is not None:
                self._pending.append((sent_at, now))
                self._wake.set()
        elif status < 500:
            if self._pace_kv is None:
                self._adopt(raised(self.state, self.policy, now=now))
            else:
                self._clean = True

    def _adopt(self, state: PaceState) -> None:
        changed = state.rate != self.state.rate
        self.state = state
        if changed:
            self._reshape()
        self._publish_gauges()

    def _reshape(self) -> None:
        self._bucket.reshape(self.share_per_s, self._monotonic(), burst_s=self._burst_s)

    def _publish_gauges(self) -> None:
        PACE.labels(self.source, "shared").set(self.state.rate)
        PACE.labels(self.source, "replica").set(self.share_per_s)
        REPLICAS.labels(self.source).set(self.replicas)

    # the bus side ----------------------------------------------------------------------------------

    async def start(
        self, js: JetStreamContext, *, sync_s: float = 0.5, heartbeat_s: float | None = None
    ) -> None:
        """Bind to the shared pace (the buckets are declared by `fmcsa_events.topology.declare`): load
        or create the document, heartbeat this replica, count the live ones, then keep them in step.
        """
        self._js = js
        # a cluster that is still electing the buckets' stream leaders (just formed, or a node died)
        # answers nothing for a few seconds: wait for it rather than fail the service's start
        async for attempt in stamina.retry_context(
            on=(NoStreamResponseError, NoRespondersError, TimeoutError), timeout=START_WAIT_S, wait_max=2.0
        ):
            with attempt:
                self._pace_kv = await js.key_value(PACE_BUCKET)
                self._replicas_kv = await js.key_value(PACE_REPLICAS_BUCKET)
                await self._sync()
                await self._heartbeat()
        beat = heartbeat_s if heartbeat_s is not None else REPLICAS_TTL_S / 3
        self._task = asyncio.create_task(self._loop(sync_s, beat), name=f"pace:{self.key}")

    async def stop(self) -> None:
        """Stop syncing and drop this replica's heartbeat, so the others take over its share at once."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._replicas_kv is not None:
            with contextlib.suppress(Exception):
                await self._replicas_kv.delete(self._replica_key)
            with contextlib.suppress(Exception):
                await self._sync()

    @property
    def _replica_key(self) -> str:
        return f"{self.key}.{self.replica}"

    async def _loop(self, sync_s: float, heartbeat_s: float) -> None:
        next_beat = self._monotonic() + heartbeat_s
        while not self._stopping:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races its timeout
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sync_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._sync()
                if self._monotonic() >= next_beat:
                    next_beat = self._monotonic() + heartbeat_s
                    await self._heartbeat()
            except Exception as error:  # the bus away for a while: pace on the local state meanwhile
                log.warning("pace_sync_failed", source=self.source, error=f"{type(error).__name__}: {error}")

    async def _sync(self) -> None:
        """Read the shared document; write our throttles and due increase onto it by compare-and-set
        (on a lost race: read again, reapply, up to a few times).
        """
        assert self._pace_kv is not None
        for _ in range(5):
            now = self._wall()
            try:
                entry = await self._pace_kv.get(self.key)
                shared = PaceState.from_json(entry.value or b"", ceiling=self.state.ceiling, now=now)
                revision: int | None = entry.revision
            except KeyNotFoundError:
                shared, revision = PaceState.initial(self.state.ceiling, now), None
            wanted = shared
            for sent_at, seen_at in self._pending:
                wanted = throttled(wanted, self.policy, now=seen_at, sent_at=sent_at)
            if self._clean and not self._pending:
                wanted = raised(wanted, self.policy, now=now)
            if wanted == shared and revision is not None:
                self._revision = revision
                self._adopt(shared)
                self._clean = self._clean and shared.rate < shared.ceiling
                return
            try:
                if revision is None:
                    written = await self._pace_kv.create(self.key, wanted.to_json())
                else:
                    written = await self._pace_kv.update(self.key, wanted.to_json(), last=revision)
            except KeyWrongLastSequenceError:
                continue  # another replica wrote first: read its state and reapply ours
            self._revision = written
            self._pending.clear()
            if wanted.rate > shared.rate:
                self._clean = False
            self._adopt(wanted)
            return

    async def _live_replicas(self) -> int:
        """Replicas with a heartbeat under this pace: the bucket's subjects under the key (from the
        stream's info, no consumer), each read back (a stopped replica's key is a delete marker).
        """
        assert self._js is not None
        assert self._replicas_kv is not None
        prefix = f"$KV.{PACE_REPLICAS_BUCKET}."
        stream = f"KV_{PACE_REPLICAS_BUCKET}"
        info = await self._js.stream_info(stream, subjects_filter=f"{prefix}{self.key}.*")
        live = 0
        for subject in (info.state.subjects or {}) if info.state else {}:
            try:
                await self._replicas_kv.get(subject[len(prefix) :])
            except (KeyNotFoundError, KeyDeletedError):
                continue
            live += 1
        return live

    async def _heartbeat(self) -> None:
        assert self._replicas_kv is not None
        doc = {
            "replica": self.replica,
            "at": self._wall(),
            "share_per_s": self.share_per_s,
            "waited_s": round(self.waited_s, 3),
        }
        await self._replicas_kv.put(self._replica_key, json.dumps(doc).encode())
        count = max(1, await self._live_replicas())
        if count != self.replicas:
            self.replicas = count
            self._reshape()
            log.info(
                "pace_replicas", source=self.source, replicas=count, share_per_s=round(self.share_per_s, 3)
            )
        self._publish_gauges()
