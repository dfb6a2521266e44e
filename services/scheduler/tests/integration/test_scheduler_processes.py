"""Real scheduler processes on a real nats-server.

The scheduler and the test share one simulated clock (`scaled_clock` with the same anchor), so a
five-minute slot passes in a second of real time at scale 300. The harness registers companies, sets
schedules, answers requests like a source service would (SourceSynced at once), collects every
SyncRequested from the stream, and reads the scheduler's status from `fmcsa_state`.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from fmcsa_embedded import Child
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.inflight import InflightMarker, Taken, inflight_key, take
from fmcsa_events.models import (
    CompanyRegistered,
    Counts,
    ErrorKind,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncRequested,
    Trigger,
)
from fmcsa_events.scheduler_status import SchedulerStatus
from fmcsa_events.schedules import DEFAULT_INTERVAL_MINUTES, DEFAULT_SOURCE_INTERVAL_MINUTES
from fmcsa_events.topology import EVENTS_STREAM, INFLIGHT_BUCKET, PACE_BUCKET, STATE_BUCKET, Topology, declare
from fmcsa_scheduler.domain import (
    Schedule,
    latest_due,
    to_ms,
)
from fmcsa_scheduler.settings import Clock, scaled_clock
from fmcsa_scheduler.state import BACKOFF_PREFIX, CHECKPOINT_KEY, StateStore


@dataclass(frozen=True)
class Seen:
    seq: int
    request: SyncRequested


@dataclass
class Harness:
    url: str
    tmp: Path
    nc: Client
    scale: float
    anchor: float
    clock: Clock
    bus: Bus
    seen: list[Seen] = field(default_factory=list)
    ignore: set[str] = field(default_factory=set)  # request ids the fake source never answers
    failing: set[str] = field(default_factory=set)  # DOTs the fake source answers with not_found
    children: list[Child] = field(default_factory=list)
    wait_until: Any = None

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    def start(self, name: str, **env: str) -> Child:
        settings = {
            "FMCSA_NATS_URL": self.url,
            "FMCSA_LOG_JSON": "true",
            "FMCSA_SCHEDULER_REPLICA_ID": name,
            "FMCSA_SCHEDULER_CLOCK_SCALE": str(self.scale),
            "FMCSA_SCHEDULER_CLOCK_ANCHOR_S": repr(self.anchor),
            "FMCSA_SCHEDULER_TICK_S": "0.05",
            "FMCSA_SCHEDULER_STATUS_INTERVAL_S": "0.2",
            **env,
        }
        child = Child(
            name, [sys.executable, "-m", "fmcsa_scheduler"], settings, log_path=self.tmp / f"{name}.log"
        )
        self.children.append(child.start())
        return child

    async def register(self, count: int) -> list[str]:
        dots = [str(1_000_000 + index) for index in range(count)]
        await self.bus.publish_many([CompanyRegistered(dot=dot) for dot in dots])
        return dots

    async def schedule(self, source: SourceKey, minutes: int, *, enabled: bool = True) -> None:
        await self.bus.publish(ScheduleChanged(source=source, interval_minutes=minutes, enabled=enabled))

    async def status(self) -> SchedulerStatus | None:
        return await StateStore(await self.js.key_value(STATE_BUCKET)).read_status()

    async def checkpoint_written(self) -> bool:
        kv = await self.js.key_value(STATE_BUCKET)
        try:
            await kv.get(CHECKPOINT_KEY)
        except nats.js.errors.KeyNotFoundError:
            return False
        return True

    def requests(self, source: SourceKey | None = None, *, after_seq: int = 0) -> list[SyncRequested]:
        return [
            s.request
            for s in self.seen
            if s.seq > after_seq and (source is None or s.request.source is source)
        ]

    def slots(self, source: SourceKey, *, after_seq: int = 0) -> dict[str, list[int]]:
        """Sorted slot starts (epoch seconds) requested per DOT."""
        found: dict[str, list[int]] = defaultdict(list)
        for request in self.requests(source, after_seq=after_seq):
            if request.slot is not None:  # manual requests have none
                found[request.dot].append(int(request.slot.timestamp()))
        return {dot: sorted(slots) for dot, slots in found.items()}

    def complete_slots(self, source: SourceKey, dots: Iterable[str]) -> list[int]:
        """Slot starts that every one of `dots` has been requested for."""
        per_slot = Counter(
            slot for dot, slots in self.slots(source).items() if dot in set(dots) for slot in slots
        )
        wanted = len(set(dots))
        return sorted(slot for slot, count in per_slot.items() if count >= wanted)

    async def _on_request(self, msg: Msg) -> None:
        decoded = decode(msg.headers, msg.data)
        assert isinstance(decoded, Decoded), decoded
        request = decoded.event
        assert isinstance(request, SyncRequested)
        self.seen.append(Seen(msg.metadata.sequence.stream, request))
        if str(request.request_id) in self.ignore:
            return
        now = self.clock()
        outcome: SourceSynced | SourceFailed = SourceSynced(
            request_id=request.request_id,
            dot=request.dot,
            source=request.source,
            counts=Counts(fetched=1),
            attempts=1,
            started_at=now,
            finished_at=now,
        )
        if request.dot in self.failing:
            outcome = SourceFailed(
                request_id=request.request_id,
                dot=request.dot,
                source=request.source,
                kind=ErrorKind.NOT_FOUND,
                retryable=False,
                attempts=1,
                message="carrier not found",
                finished_at=now,
            )
        await self.bus.publish(outcome, cause=decoded.envelope)

    async def last_seq(self) -> int:
        return int((await self.js.stream_info(EVENTS_STREAM)).state.last_seq)

    async def until(self, check: Callable[[], Awaitable[bool]], *, what: str, within_s: float) -> None:
        """`wait_until`, failing with what the scheduler did (requests, status, where the logs are)."""
        try:
            await self.wait_until(check, what=what, within_s=within_s)
        except pytest.fail.Exception:
            seen = {
                f"{source}.{dot}": [datetime.fromtimestamp(slot, UTC).strftime("%H:%M") for slot in slots]
                for source in SourceKey
                for dot, slots in self.slots(source).items()
            }
            pytest.fail(
                f"no {what} after {within_s}s\nslots: {seen}\nstatus: {await self.status()}\nlogs: {self.tmp}"
            )


FAKE_PACE_PER_S = 1_000_000.0


@pytest.fixture
def scale() -> float:
    return 300.0


@pytest.fixture
async def harness(
    fresh_nats_url: str, tmp_path: Path, scale: float, wait_until: Any
) -> AsyncIterator[Harness]:
    nc = await nats.connect(fresh_nats_url)
    js = nc.jetstream()
    await declare(js, Topology())
    await js.key_value(INFLIGHT_BUCKET)
    # The harness answers every request at once, as a source with an unbounded pace would: say so in
    # `fmcsa_pace`, so the scheduler's in-flight cap (its capacity, on this fast clock) holds nothing back.
    paces = await js.key_value(PACE_BUCKET)
    for source in SourceKey:
        await paces.put(f"{source}.harness", json.dumps({"rate": FAKE_PACE_PER_S}).encode())
    anchor = time.time()
    clock = scaled_clock(scale=scale, anchor_s=anchor)
    bus = Bus(js, producer="test", clock=clock)
    harness = Harness(fresh_nats_url, tmp_path, nc, scale, anchor, clock, bus, wait_until=wait_until)
    config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    sub = await js.subscribe(
        "fmcsa.evt.sync_requested.>",
        stream=EVENTS_STREAM,
        cb=harness._on_request,
        ordered_consumer=True,
        config=config,
    )
    try:
        yield harness
    finally:
        for child in harness.children:
            child.kill()
        await sub.unsubscribe()
        await nc.drain()


CSA, VIOLATIONS, INSPECTIONS, AUTHORITY = (
    SourceKey.CSA,
    SourceKey.VIOLATIONS,
    SourceKey.INSPECTIONS,
    SourceKey.AUTHORITY,
)
FIVE_MINUTES = 300


def assert_each_slot_once_and_none_missing(harness: Harness, source: SourceKey, step_s: int) -> None:
    requests = harness.requests(source)
    per_slot = Counter((r.dot, r.slot) for r in requests)
    assert max(per_slot.values()) == 1, [key for key, count in per_slot.items() if count > 1]
    for dot, slots in harness.slots(source).items():
        assert slots == list(range(slots[0], slots[-1] + step_s, step_s)), f"{dot} missed a slot: {slots}"


async def test_two_replicas_publish_each_slot_once(harness: Harness) -> None:
    dots = await harness.register(30)
    await harness.schedule(CSA, 5)
    await harness.schedule(VIOLATIONS, 5, enabled=False)
    await harness.schedule(INSPECTIONS, 5, enabled=False)
    await harness.schedule(AUTHORITY, 5, enabled=False)  # its daily default can fall due on the fast clock
    harness.start("replica-a")
    harness.start("replica-b")
    replicas: set[str] = set()

    async def four_full_slots_seen_by_both() -> bool:
        status = await harness.status()
        if status is not None and status.ready:
            replicas.add(status.replica)
        return len(harness.complete_slots(CSA, dots)) >= 4 and replicas == {"replica-a", "replica-b"}

    await harness.until(
        four_full_slots_seen_by_both, what="four slots requested with both replicas up", within_s=20
    )
    for child in harness.children:
        assert child.stop() == 0  # a graceful stop
    assert_each_slot_once_and_none_missing(harness, CSA, FIVE_MINUTES)
    assert {r.source for r in harness.requests()} == {CSA}


@pytest.mark.parametrize("scale", [60.0])
async def test_kill_and_restart_inside_a_slot_publishes_nothing_twice(harness: Harness) -> None:
    dots = await harness.register(30)
    await harness.schedule(CSA, 5)
    await harness.schedule(VIOLATIONS, 5, enabled=False)
    await harness.schedule(INSPECTIONS, 5, enabled=False)
    await harness.schedule(AUTHORITY, 5, enabled=False)  # its daily default can fall due on the fast clock
    first = harness.start("replica-a")

    def requested_in(slot: int) -> int:
        return sum(1 for slots in harness.slots(CSA).values() if slot in slots)

    async def early_in_a_slot() -> bool:
        slots = Counter(slot for slots in harness.slots(CSA).values() for slot in slots)
        return any(3 <= count <= 20 and slot + FIVE_MINUTES not in slots for slot, count in slots.items())

    await harness.until(early_in_a_slot, what="a slot with 3 to 20 of 30 requested", within_s=20)
    first.kill()
    killed_in = max(slot for slots in harness.slots(CSA).values() for slot in slots)
    before_kill = {r.dot for r in harness.requests(CSA) if int(r.slot.timestamp()) == killed_in}
    harness.start("replica-a-again")
    await harness.until(
        lambda: _true(requested_in(killed_in + FIVE_MINUTES) == 30),
        what="the slot after the kill requested in full",
        within_s=30,
    )
    per_slot = Counter((r.dot, r.slot) for r in harness.requests(CSA))
    assert max(per_slot.values()) == 1, [key for key, count in per_slot.items() if count > 1]
    # A slot that came due while no scheduler ran is caught up (the latest missed one only): the killed
    # slot itself if the restart came inside it, else the next one. So every DOT has the next one.
    slots = harness.slots(CSA)
    assert all(killed_in + FIVE_MINUTES in slots[dot] for dot in dots)
    caught_up = [r for r in harness.requests(CSA) if r.trigger is Trigger.CATCH_UP]
    assert all(int(r.slot.timestamp()) >= killed_in for r in caught_up if r.slot is not None)
    assert max(Counter(r.dot for r in caught_up).values(), default=1) == 1  # the latest missed slot only
    print(f"requested before the kill: {len(before_kill)}; caught up after the restart: {len(caught_up)}")


@pytest.mark.parametrize("scale", [1.0])
async def test_after_downtime_only_the_latest_missed_slot_is_requested(harness: Harness) -> None:
    dots = await harness.register(10)
    first = harness.start("replica-a")
    await harness.until(harness.checkpoint_written, what="a checkpoint", within_s=15)
    assert first.stop() == 0
    before = await harness.last_seq()
    two_days = 2 * 24 * 3600
    harness.start("replica-a-two-days-later", FMCSA_SCHEDULER_CLOCK_OFFSET_S=str(two_days))

    async def caught_up_and_ticked_on() -> bool:
        status = await harness.status()
        caught_up = harness.requests(after_seq=before)
        if len(caught_up) < 10 * len(SourceKey) or status is None or status.last_tick_at is None:
            return False
        return status.last_tick_at > max(r.requested_at for r in caught_up) + timedelta(seconds=1)

    await harness.until(
        caught_up_and_ticked_on, what="a catch-up request per pair and a second of ticks", within_s=20
    )
    catch_ups = [r for r in harness.requests(after_seq=before) if r.trigger is Trigger.CATCH_UP]
    assert Counter((r.source, r.dot) for r in catch_ups) == Counter(
        {(s, d): 1 for s in SourceKey for d in dots}
    )
    # each source on its default: authority daily, the others every 6 hours
    minutes = {s: DEFAULT_SOURCE_INTERVAL_MINUTES.get(s, DEFAULT_INTERVAL_MINUTES) for s in SourceKey}
    assert minutes[SourceKey.AUTHORITY] == 1440
    for request in catch_ups:
        index = dots.index(request.dot)  # the harness registered them in this order: numbers 0..9
        timing = Schedule(interval_minutes=minutes[request.source]).timing()
        expected = latest_due(timing, index, request.source, to_ms(request.requested_at))
        assert to_ms(request.slot) == expected.slot_ms
    # anything else after the restart is a regular later slot, never an older missed one
    for request in harness.requests(after_seq=before):
        gap = timedelta(minutes=minutes[request.source])
        assert request.trigger is Trigger.CATCH_UP or request.requested_at - request.slot < gap


@pytest.mark.parametrize("scale", [600.0])
async def test_a_schedule_change_takes_effect_for_its_source_only(harness: Harness) -> None:
    dots = await harness.register(20)
    await harness.schedule(CSA, 5)
    await harness.schedule(VIOLATIONS, 5)
    await harness.schedule(INSPECTIONS, 5, enabled=False)
    await harness.schedule(AUTHORITY, 5, enabled=False)  # its daily default can fall due on the fast clock
    harness.start("replica-a")

    def full_slots(source: SourceKey, since_s: float = 0) -> int:
        return sum(1 for slot in harness.complete_slots(source, dots) if slot >= since_s)

    await harness.until(
        lambda: _true(full_slots(CSA) >= 2 and full_slots(VIOLATIONS) >= 2),
        what="two slots of each",
        within_s=15,
    )
    await harness.schedule(CSA, 10)

    async def folded() -> bool:
        status = await harness.status()
        return status is not None and status.sources["csa"].interval_minutes == 10

    await harness.until(folded, what="the change in the status", within_s=10)
    changed_at = harness.clock().timestamp()  # every slot that starts from now on is the new schedule's
    await harness.until(
        lambda: _true(full_slots(CSA, changed_at) >= 2), what="two slots of the new csa schedule", within_s=20
    )
    status = await harness.status()
    assert status is not None
    assert status.sources["violations"].interval_minutes == 5
    for child in harness.children:
        child.stop()
    new_csa_slots = [s for slots in harness.slots(CSA).values() for s in slots if s >= changed_at]
    assert new_csa_slots
    assert all(slot % (10 * 60) == 0 for slot in new_csa_slots)
    for slots in harness.slots(CSA).values():
        after = [s for s in slots if s >= changed_at]
        assert all(b - a == 10 * 60 for a, b in itertools.pairwise(after))
    assert_each_slot_once_and_none_missing(harness, VIOLATIONS, FIVE_MINUTES)  # undisturbed, every 5 minutes
    assert max(s for slots in harness.slots(VIOLATIONS).values() for s in slots) > changed_at + 10 * 60
    assert harness.requests(INSPECTIONS) == []


async def test_an_in_flight_company_and_source_is_not_requested_again(harness: Harness) -> None:
    dots = await harness.register(10)
    await harness.schedule(CSA, 5)
    await harness.schedule(VIOLATIONS, 5, enabled=False)
    await harness.schedule(INSPECTIONS, 5, enabled=False)
    await harness.schedule(AUTHORITY, 5, enabled=False)  # its daily default can fall due on the fast clock
    # what the gateway does for a manual trigger: take the marker, then publish the request
    now = harness.clock()
    manual = SyncRequested(
        request_id=uuid4(),
        dot=dots[0],
        source=CSA,
        trigger=Trigger.MANUAL,
        requested_by="ops@example.com",
        requested_at=now,
        deadline=now + timedelta(days=1),
    )
    kv = await harness.js.key_value(INFLIGHT_BUCKET)
    marker = InflightMarker.for_request(manual, taken_at=now)
    assert isinstance(await take(kv, marker, source=CSA, dot=dots[0], now=now), Taken)
    harness.ignore.add(str(manual.request_id))  # the source is still working on it
    await harness.bus.publish(manual)
    harness.start("replica-a")

    async def three_slots_of_the_others_and_skips_counted() -> bool:
        status = await harness.status()
        skipped = status.sources["csa"].skipped.get("in_flight", 0) if status is not None else 0
        return len(harness.complete_slots(CSA, dots[1:])) >= 3 and skipped >= 2

    await harness.until(
        three_slots_of_the_others_and_skips_counted, what="three slots and two skips", within_s=20
    )
    assert [r.trigger for r in harness.requests(CSA) if r.dot == dots[0]] == [Trigger.MANUAL]
    done = harness.clock()
    await harness.bus.publish(
        SourceSynced(
            request_id=manual.request_id,
            dot=dots[0],
            source=CSA,
            counts=Counts(),
            attempts=1,
            started_at=done,
            finished_at=done,
        )
    )
    await harness.until(
        lambda: _true(any(r.trigger is Trigger.SCHEDULED for r in harness.requests(CSA) if r.dot == dots[0])),
        what="a scheduled request once the manual one was answered",
        within_s=10,
    )
    try:
        held = InflightMarker.decode((await kv.get(inflight_key(CSA, dots[0]))).value)
    except nats.js.errors.KeyNotFoundError:
        held = None
    assert held is None or held.request_id != manual.request_id  # the manual request's marker was released


async def _true(value: bool) -> bool:
    return value


async def test_a_pair_failing_non_retryably_backs_off_until_a_manual_trigger(
    harness: Harness,
) -> None:
    dots = await harness.register(6)
    await harness.schedule(CSA, 5)
    await harness.schedule(VIOLATIONS, 5, enabled=False)
    await harness.schedule(INSPECTIONS, 5, enabled=False)
    await harness.schedule(AUTHORITY, 5, enabled=False)  # its daily default can fall due on the fast clock
    harness.failing.add(dots[0])
    harness.start("replica-a")
    state = await harness.js.key_value(STATE_BUCKET)
    key = f"{BACKOFF_PREFIX}.csa.{dots[0]}"

    async def held_back_once_then_three_times() -> bool:
        status = await harness.status()
        return status is not None and status.sources["csa"].skipped.get("backoff", 0) >= 4

    await harness.until(held_back_once_then_three_times, what="four slots held back", within_s=20)
    stored = json.loads((await state.get(key)).value or b"{}")
    assert stored["failures"] >= 2
    assert stored["kind"] == "not_found"
    # held back slots are not requested (how many per failure: test_domain's doubling test; here the
    # outcome of a request may be late by a slot, a second of real time at this clock scale)
    assert len(harness.slots(CSA)[dots[1]]) >= len(harness.slots(CSA)[dots[0]]) + 3
    # someone triggers it by hand: the back-off ends (and the stored record goes)
    harness.failing.clear()
    now = harness.clock()
    await harness.bus.publish(
        SyncRequested(
            request_id=uuid4(),
            dot=dots[0],
            source=CSA,
            trigger=Trigger.MANUAL,
            requested_by="ops@example.com",
            requested_at=now,
            deadline=now + timedelta(minutes=30),
        )
    )

    async def record_deleted() -> bool:
        try:
            await state.get(key)
        except nats.js.errors.KeyNotFoundError:
            return True
        return False

    await harness.until(record_deleted, what="the back-off record deleted", within_s=10)
