"""R6 poison: garbage, wrong-version, oversized and envelope-less payloads (and JSON the standard parser
chokes on: nesting too deep, an integer too long, NaN) on every subject the services
consume end in the dead-letter stream with their reason, once per consuming service (the projector for
all of `fmcsa.evt.>`, each source for its requests); the scheduler, which re-reads the log at every
start, counts and skips them by design. No service stops or loops, and all keep working afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from reliability_support import SOURCES, Projection, System, manual_request, publish_surely, wait_settled

from fmcsa_events.bus import Bus
from fmcsa_events.decoder import MAX_PAYLOAD_BYTES
from fmcsa_events.models import (
    CarrierDataChanged,
    CompanyRegistered,
    CompanyRemoved,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncRequested,
)
from fmcsa_events.topology import DLQ_STREAM, EVENTS_STREAM, STATE_BUCKET, source_durable
from fmcsa_scheduler.state import StateStore

pytestmark = pytest.mark.reliability

DOT = 6_000_001
DOTS = range(6_000_000, 6_000_100)
# subject -> (event type named in its envelope, the services that consume it and dead-letter poison)
SUBJECTS: dict[str, tuple[str, set[str]]] = {
    **{
        f"fmcsa.evt.sync_requested.{s}.{DOT}": (SyncRequested.TYPE, {"status", f"source-{s}"})
        for s in SOURCES
    },
    f"fmcsa.evt.source_synced.csa.{DOT}": (SourceSynced.TYPE, {"status"}),
    f"fmcsa.evt.source_failed.violations.{DOT}": (SourceFailed.TYPE, {"status"}),
    f"fmcsa.evt.carrier_data_changed.inspections.{DOT}": (CarrierDataChanged.TYPE, {"status"}),
    f"fmcsa.evt.company_registered.{DOT}": (CompanyRegistered.TYPE, {"status"}),
    f"fmcsa.evt.company_removed.{DOT}": (CompanyRemoved.TYPE, {"status"}),
    "fmcsa.evt.schedule_changed.csa": (ScheduleChanged.TYPE, {"status"}),
}
SCHEDULER_READS = ("sync_requested", "source_synced", "source_failed", "company_", "schedule_changed")


def poison(event_type: str) -> list[tuple[str, dict[str, str] | None, bytes]]:
    """(expected reason, headers, payload) of each kind of poison for one event type."""

    def headers(version: str = "1") -> dict[str, str]:
        return {
            "Nats-Msg-Id": f"r6:{uuid4()}",
            "Fmcsa-Type": event_type,
            "Fmcsa-Version": version,
            "Fmcsa-Occurred-At": datetime.now(UTC).isoformat(),
            "Fmcsa-Producer": "r6",
        }

    oversized = json.dumps({"dot": str(DOT), "name": "x" * (MAX_PAYLOAD_BYTES + 10)}).encode()
    return [
        ("not_json", headers(), b"\x00\xffnot json{"),
        ("unknown_version", headers("99"), json.dumps({"dot": str(DOT)}).encode()),
        ("too_large", headers(), oversized),
        ("missing_header", {"Nats-Msg-Id": f"r6:{uuid4()}"}, b'{"dot": "1"}'),
        # what Python's json.loads raises on, or accepts although it is no JSON (PostgreSQL refuses it)
        ("not_json", headers(), b'{"dot": "1", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        ("not_json", headers(), b'{"dot": "1", "x": ' + b"9" * 5_000 + b"}"),
        ("not_json", headers(), b'{"dot": "1", "summary": {"x": Infinity}, "y": NaN}'),
    ]


async def dead_letters(nc: Client) -> list[dict[str, str]]:
    """The headers of every message in the dead-letter stream."""
    js = nc.jetstream()
    last = (await js.stream_info(DLQ_STREAM)).state.last_seq
    found: list[dict[str, str]] = []
    if last == 0:
        return found
    sub = await js.subscribe(
        "fmcsa.dlq.>",
        stream=DLQ_STREAM,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            found.append(dict(msg.headers or {}))
            if msg.metadata.sequence.stream >= last:
                return found
    finally:
        await sub.unsubscribe()


async def scheduler_skipped(nc: Client) -> int:
    status = await StateStore(await nc.jetstream().key_value(STATE_BUCKET)).read_status()
    return status.undecodable_events if status is not None else 0


@pytest.mark.timeout(300)
async def test_r6_poison_on_every_subject_is_dead_lettered_with_its_reason(
    system: System, nc: Client, report: Callable[[str], None], wait_until: Any
) -> None:
    js = nc.jetstream()
    projection = Projection(system.status_url)
    skipped_before = await scheduler_skipped(nc)
    rejected_before = await projection.rejected()
    expected: dict[tuple[str, str], str] = {}  # (service, stream seq) -> reason
    scheduler_should_skip = 0
    for subject, (event_type, services) in SUBJECTS.items():
        for reason, headers, payload in poison(event_type):
            ack = await js.publish(subject, payload, stream=EVENTS_STREAM, headers=headers)
            for service in services:
                expected[(service, str(ack.seq))] = reason
            if any(part in subject for part in SCHEDULER_READS):
                scheduler_should_skip += 1
    found: dict[tuple[str, str], list[str]] = {}

    async def all_dead_lettered() -> bool:
        nonlocal found
        found = {}
        for letter in await dead_letters(nc):
            key = (letter.get("Fmcsa-Dlq-Service", ""), letter.get("Fmcsa-Dlq-Seq", ""))
            found.setdefault(key, []).append(letter.get("Fmcsa-Dlq-Reason", ""))
        return set(expected) <= set(found)

    with contextlib.suppress(pytest.fail.Exception):  # the line below says what is missing
        await wait_until(all_dead_lettered, what="every poison message dead-lettered", within_s=60)

    # still working: a fresh request per source ends with its outcome
    after = [manual_request(source, DOT + 1 + n) for n, source in enumerate(SOURCES)]
    await publish_surely(Bus(js, producer="reliability"), after)
    working = await wait_settled(nc, projection, DOTS, SOURCES, within_s=120)
    await asyncio.sleep(2)  # a looping consumer would add dead letters or redeliveries meanwhile
    await all_dead_lettered()
    idle = []
    for source in SOURCES:
        info = await js.consumer_info(EVENTS_STREAM, source_durable(source))
        idle.append(info.num_ack_pending == 0 and info.num_redelivered == 0)
    missing = sorted(key for key in expected if key not in found)
    wrong = sorted(key for key, reason in expected.items() if key in found and found[key] != [reason])
    reasons = Counter(reason for key in expected if key in found for reason in found[key])
    skipped = await scheduler_skipped(nc) - skipped_before
    rejected = await projection.rejected() - rejected_before
    alive = system.alive()
    report(
        f"R6 poison={len(expected) - sum(1 for s, _ in expected if s.startswith('source-'))} "
        f"subjects={len(SUBJECTS)} dead_letters={sum(len(v) for k, v in found.items() if k in expected)} "
        f"expected={len(expected)} missing={len(missing)} wrong_reason={len(wrong)} "
        f"reasons={','.join(f'{k}:{n}' for k, n in sorted(reasons.items()))} status_rejected=+{rejected} "
        f"scheduler_skipped=+{skipped}/{scheduler_should_skip} alive={sum(alive.values())}/{len(alive)} "
        f"working_after={working} consumers_idle={sum(idle)}/{len(idle)}"
    )
    assert not missing, missing[:10]
    assert not wrong, [(k, found[k], expected[k]) for k in wrong[:10]]
    assert all(alive.values()), alive
    assert working, "the services did not answer fresh requests after the poison"
    assert all(idle), "a source consumer keeps redelivering"
    assert rejected == len({seq for _, seq in expected})
    assert skipped >= scheduler_should_skip
