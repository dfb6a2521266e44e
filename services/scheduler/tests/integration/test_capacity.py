"""Capacity-aware scheduling on a real system: a secured nats-server, the sandbox limited to 5 csa calls
a second, the csa source (its pace 4 calls/s, so 2 syncs/s; its SQLite store) and the scheduler, each a
process connecting as its own bus user.

3,000 companies every 10 minutes make 5 csa requests come due a second, where csa serves 2. With a
15-second deadline the scheduler keeps at most `2 x 15 x 0.8 = 24` csa requests open; the rest wait and
are sent the stalest first (seeded: the test publishes an earlier `SourceSynced` for most companies
before the scheduler starts, so the scheduler reads their last syncs from the stream). Without the cap
the backlog grows by 3 a second and requests end `timeout` after 15 seconds.

The scheduler runs on the real clock here (clock scale 1): a source checks a request's deadline against
its own clock, so a scaled scheduler clock would move the deadlines out of reach and no request could
ever end `timeout`. The run lasts until a backlog has built up (counted, not timed).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from fmcsa_cli.launcher import Launcher, bus_credential_env
from fmcsa_embedded import Child, free_port
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CompanyRegistered,
    Counts,
    ErrorKind,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncRequested,
)
from fmcsa_events.permissions import SCHEDULER
from fmcsa_events.scheduler_status import SchedulerStatus
from fmcsa_events.topology import EVENTS_STREAM, STATE_BUCKET
from fmcsa_scheduler.capacity import NEVER_SYNCED, staleness_order
from fmcsa_scheduler.domain import IntervalTiming, due_in_slot, to_ms
from fmcsa_scheduler.state import StateStore

CSA = SourceKey.CSA
COMPANIES = 3_000
INTERVAL_MINUTES = 10
DEADLINE_S = 15
CAP = 24  # 4 calls/s / 2 calls a sync x 15 s x 0.8
FIRST_DOT = 1_000_000


@dataclass
class Seen:
    """Every csa request and outcome on the stream, in stream order."""

    events: list[tuple[int, SyncRequested | SourceSynced | SourceFailed]] = field(default_factory=list)

    async def on_message(self, msg: Msg) -> None:
        decoded = decode(msg.headers, msg.data)
        assert isinstance(decoded, Decoded), decoded
        event = decoded.event
        if isinstance(event, SyncRequested | SourceSynced | SourceFailed) and event.source is CSA:
            self.events.append((msg.metadata.sequence.stream, event))

    def requests(self) -> list[SyncRequested]:
        return [e for _, e in self.events if isinstance(e, SyncRequested)]

    def outcomes(self) -> dict[str, SourceSynced | SourceFailed]:
        return {str(e.request_id): e for _, e in self.events if not isinstance(e, SyncRequested)}


@pytest.fixture
def system(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        services=["sandbox", "csa"],
        extra_env={
            "FMCSA_LOG_JSON": "true",
            "FMCSA_JWT_SECRET": "capacity-test-" + "x" * 40,
            "FMCSA_CSA_RATE_PER_S": "4",
            "FMCSA_SANDBOX_CSA_RATE_PER_S": "5",
        },
    )
    launcher.start()
    try:
        yield launcher
    finally:
        launcher.stop(grace_s=10)


@pytest.fixture
async def admin(system: Launcher) -> AsyncIterator[Client]:
    assert system.nats is not None
    nc = await nats.connect(system.nats.url, **system.bus_admin())
    try:
        yield nc
    finally:
        await nc.drain()


def start_scheduler(system: Launcher) -> Child:
    assert system.nats is not None
    env = {
        "FMCSA_NATS_URL": system.nats.url,
        "FMCSA_DATA_DIR": str(system.data_dir),
        "FMCSA_LOG_JSON": "true",
        "FMCSA_SCHEDULER_HTTP_PORT": str(free_port()),
        "FMCSA_SCHEDULER_REPLICA_ID": "capacity",
        "FMCSA_SCHEDULER_TICK_S": "0.1",
        "FMCSA_SCHEDULER_STATUS_INTERVAL_S": "0.5",
        "FMCSA_SCHEDULER_DEADLINE_MINUTES": str(DEADLINE_S / 60),
        "FMCSA_SCHEDULER_SOURCE_INTERVAL_MINUTES": json.dumps({"csa": INTERVAL_MINUTES}),
        **bus_credential_env(system.data_dir, SCHEDULER),
    }
    command = [sys.executable, "-m", "fmcsa_scheduler"]
    return Child("scheduler", command, env, log_path=system.logs_dir / "scheduler.log").start()


async def seed(admin: Client, dots: list[str]) -> dict[str, int]:
    """Register the companies (numbers 0.. in this order) and give all but every fifth an earlier
    successful csa sync at a shuffled time; the other sources are switched off. Returns DOT -> ms."""
    bus = Bus(admin.jetstream(), producer="test")
    for source in SourceKey:  # csa's interval is a setting: a ScheduleChanged would start at the next slot
        if source is not CSA:
            await bus.publish(ScheduleChanged(source=source, interval_minutes=60, enabled=False))
    for dot in dots:  # one at a time: the scheduler numbers the companies in stream order
        await bus.publish(CompanyRegistered(dot=dot))
    synced = [dot for number, dot in enumerate(dots) if number % 5]
    random.Random(24).shuffle(synced)
    base = datetime.now(UTC) - timedelta(days=2)
    last: dict[str, int] = {}
    for offset, dot in enumerate(synced):
        at = base + timedelta(seconds=offset)
        stamped = Bus(admin.jetstream(), producer="test", clock=lambda at=at: at)
        event = SourceSynced(
            request_id=uuid4(),
            dot=dot,
            source=CSA,
            counts=Counts(),
            attempts=1,
            started_at=at,
            finished_at=at,
        )
        published = await stamped.publish(event)
        last[dot] = to_ms(published.envelope.occurred_at)
    return last


async def status(admin: Client) -> SchedulerStatus | None:
    return await StateStore(await admin.jetstream().key_value(STATE_BUCKET)).read_status()


@pytest.mark.timeout(180)
async def test_capped_in_flight_no_timeout_and_the_stalest_first(
    system: Launcher, admin: Client, wait_until: Any
) -> None:
    dots = [str(FIRST_DOT + number) for number in range(COMPANIES)]
    last_synced = await seed(admin, dots)
    seen = Seen()
    sub = await admin.jetstream().subscribe(
        "fmcsa.evt.>",
        stream=EVENTS_STREAM,
        cb=seen.on_message,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )
    # The order is checked inside one 10-minute slot: start with at least 45 s of it left (slots are
    # counted from the epoch, so this waits at most 45 s, in 1 run of 13)
    timing = IntervalTiming(INTERVAL_MINUTES)
    if (left_s := (timing.slot_at(int(time.time() * 1000))[1] - time.time() * 1000) / 1000) < 45:
        await asyncio.sleep(left_s + 0.5)  # the next slot's start; nothing to poll for
    scheduler = start_scheduler(system)
    statuses: list[SchedulerStatus] = []

    async def backlog_built() -> bool:
        current = await status(admin)
        if current is None or not current.ready:
            return False
        statuses.append(current)
        csa = current.sources["csa"]
        return csa.waiting >= 40 and len(seen.requests()) >= 60

    try:
        await wait_until(backlog_built, what="60 csa requests sent and 40 waiting", within_s=120)
    except pytest.fail.Exception:
        sent, answered = len(seen.requests()), len(seen.outcomes())
        pytest.fail(f"sent {sent}, answered {answered}; status {statuses[-1:]}; logs {system.logs_dir}")
    finally:
        assert scheduler.stop() == 0
    last = statuses[-1]
    requests = seen.requests()

    async def every_request_answered() -> bool:
        return all(str(r.request_id) in seen.outcomes() for r in requests)

    await wait_until(every_request_answered, what="an outcome for every csa request", within_s=60)
    await sub.unsubscribe()
    outcomes = seen.outcomes()

    # no request ended `timeout`
    timeouts = [o for o in outcomes.values() if isinstance(o, SourceFailed) and o.kind is ErrorKind.TIMEOUT]
    assert timeouts == []

    # never more open than the cap, counted in stream order
    csa = last.sources["csa"]
    assert csa.pace_known
    assert csa.pace_per_s == 4.0
    assert csa.in_flight_cap == CAP
    asked = {str(r.request_id) for r in requests}
    open_now: set[str] = set()
    most_open = 0
    for _, event in seen.events:
        if isinstance(event, SyncRequested):
            open_now.add(str(event.request_id))
            most_open = max(most_open, len(open_now))
        elif str(event.request_id) in asked:
            open_now.discard(str(event.request_id))
    assert most_open <= CAP
    assert most_open > CAP // 2  # near the cap: the backlog waited at the scheduler, not at the source

    # the stalest first: each tick sent the stalest of what had come due and was still waiting
    started_ms = round(last.started_at.timestamp() * 1000)  # exact: the status keeps whole milliseconds
    slot = timing.slot_at(started_ms)
    due = {dot: due_in_slot(number, CSA, slot).due_ms for number, dot in enumerate(dots)}
    number = {dot: n for n, dot in enumerate(dots)}

    def order(dot: str) -> tuple[int, int]:
        return staleness_order(last_synced.get(dot, NEVER_SYNCED), number[dot])

    by_tick: dict[int, list[str]] = defaultdict(list)
    for request in requests:
        assert request.slot is not None
        assert to_ms(request.slot) == slot[0]
        by_tick[to_ms(request.requested_at)].append(request.dot)
    served: set[str] = set()
    checked = 0
    for tick_ms in sorted(by_tick):
        sent = by_tick[tick_ms]
        waiting = {d for d, at in due.items() if started_ms < at <= tick_ms and d not in served}
        assert set(sent) <= waiting, "only due companies are sent"
        left = waiting - set(sent)
        if left:
            assert max(order(d) for d in sent) < min(order(d) for d in left)
            checked += 1
        served |= set(sent)
    assert checked >= 20  # ticks that chose among waiting companies

    # and says so: the status, the message
    expected = "csa: 3,000 companies need 25 min a cycle at 2 sync/s; interval 10 min"
    assert csa.capacity_message == expected
    assert csa.behind
    assert last.capacity_warnings == [expected]
    print(
        f"\ncapacity: requests={len(requests)} most_open={most_open} cap={CAP} waiting={csa.waiting} "
        f"ticks_checked={checked} timeouts={len(timeouts)} message={expected!r}"
    )
