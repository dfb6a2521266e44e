"""The shared source runner on a real nats-server and a real SQLite database.

The upstream here is a scripted stand-in (the runner's subject is delivery, not HTTP); the sources'
own tests run the real clients against the sandbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import REGISTRY

from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode, encode
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
    Trigger,
    ViolationsListed,
)
from fmcsa_events.subjects import subject_for
from fmcsa_events.topology import DLQ_STREAM, EVENTS_STREAM, PACE_REPLICAS_BUCKET, Topology, declare
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.pacing import UpstreamPace
from fmcsa_source_kit.runner import SavedOutcome, create_source_app, publish_outcome
from fmcsa_source_kit.settle import Stored


class RunnerSettings(ServiceSettings):
    max_attempts: int = 3
    concurrency: int = 8
    database: str = ""

    def resolved_database_url(self) -> str:
        return self.database


@dataclass
class ScriptedUpstream:
    """Answers per DOT from a script (the last answer repeats); counts calls."""

    script: dict[str, list[str | Failure]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    configured: bool = True
    block: asyncio.Event | None = None
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # these DOTs hang until their event

    async def fetch(self, dot: str) -> str | Failure:
        self.calls[dot] = self.calls.get(dot, 0) + 1
        if self.block is not None:
            await self.block.wait()
        if dot in self.hold:
            await self.hold[dot].wait()
        answers = self.script.get(dot, ["ok"])
        return answers[min(self.calls[dot], len(answers)) - 1]

    async def store(self, fetched: str, request: SyncRequested) -> Stored:
        return Stored(Counts(fetched=1, inserted=1), datetime.now(UTC), None, {"data": fetched})

    async def close(self) -> None:
        return None


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


def settings_for(url: str, tmp_path: Path, **extra: Any) -> RunnerSettings:
    return RunnerSettings(
        nats_url=url, data_dir=tmp_path, database=f"sqlite:///{tmp_path / 'csa.sqlite3'}", **extra
    )


def a_request(
    dot: str = "2847193", *, deadline_s: float = 600, request_id: UUID | None = None
) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=request_id or uuid4(),
        dot=dot,
        source="csa",
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(seconds=deadline_s),
    )


async def outcomes(nc: Client) -> list[SourceSynced | SourceFailed]:
    return [e for e in await events(nc) if isinstance(e, SourceSynced | SourceFailed)]


async def events(nc: Client) -> list[Event]:
    """Every decodable event on the stream, in stream order."""
    js = nc.jetstream()
    last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    found: list[Event] = []
    if last == 0:
        return found
    sub = await js.subscribe(
        "fmcsa.evt.>", ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            decoded = decode(msg.headers, msg.data)
            if isinstance(decoded, Decoded):
                found.append(decoded.event)
            if msg.metadata.sequence.stream >= last:
                return found
    finally:
        await sub.unsubscribe()


async def test_each_request_gets_one_outcome_and_failures_do_not_hide_others(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    upstream = ScriptedUpstream(
        script={"1": [Failure(ErrorKind.NOT_FOUND, retryable=False, message="no such carrier")]}
    )

    async def adapter() -> ScriptedUpstream:
        return upstream

    app = create_source_app(
        settings_for(fresh_nats_url, tmp_path), source=SourceKey.CSA, adapter_factory=adapter
    )
    bus = Bus(nc.jetstream(), producer="test")
    async with app:
        requests = [a_request(str(dot)) for dot in range(1, 21)]
        await bus.publish_many(requests)

        async def all_answered() -> bool:
            return len(await outcomes(nc)) >= 20

        await wait_until(all_answered, what="20 outcomes")
    found = await outcomes(nc)
    assert sorted(str(o.request_id) for o in found) == sorted(str(r.request_id) for r in requests)
    failed = [o for o in found if isinstance(o, SourceFailed)]
    assert [(f.dot, f.kind) for f in failed] == [("1", ErrorKind.NOT_FOUND)]


async def test_retryable_failure_is_retried_by_delayed_redelivery_then_succeeds(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    busy = Failure(ErrorKind.RATE_LIMITED, retryable=True, message="429", retry_after_s=0.2)
    upstream = ScriptedUpstream(script={"7": [busy, busy, "fresh"]})

    async def adapter() -> ScriptedUpstream:
        return upstream

    app = create_source_app(
        settings_for(fresh_nats_url, tmp_path), source=SourceKey.CSA, adapter_factory=adapter
    )
    async with app:
        await Bus(nc.jetstream(), producer="test").publish(a_request("7"))

        async def answered() -> bool:
            return len(await outcomes(nc)) == 1

        await wait_until(answered, what="the outcome after two retries")
    (outcome,) = await outcomes(nc)
    assert isinstance(outcome, SourceSynced)
    assert outcome.attempts == 3
    assert upstream.calls["7"] == 3
    # each handed-back attempt said so, and "took" runs from the first attempt to the outcome
    progress = [e for e in await events(nc) if isinstance(e, SyncAttemptFailed)]
    assert [(p.attempt, p.max_attempts, p.kind) for p in progress] == [
        (1, 3, ErrorKind.RATE_LIMITED),
        (2, 3, ErrorKind.RATE_LIMITED),
    ]
    assert {p.first_attempt_at for p in progress} == {outcome.started_at}
    assert all(p.retry_at > p.first_attempt_at for p in progress)
    assert outcome.duration_ms >= 300  # two retries of at least 0.16 s each: more than the last attempt


async def test_spent_attempts_end_in_one_final_failure(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    down = Failure(ErrorKind.UPSTREAM_ERROR, retryable=True, message="503", retry_after_s=0.1)
    upstream = ScriptedUpstream(script={"9": [down]})

    async def adapter() -> ScriptedUpstream:
        return upstream

    app = create_source_app(
        settings_for(fresh_nats_url, tmp_path), source=SourceKey.CSA, adapter_factory=adapter
    )
    async with app:
        await Bus(nc.jetstream(), producer="test").publish(a_request("9"))

        async def answered() -> bool:
            return len(await outcomes(nc)) == 1

        await wait_until(answered, what="a final failure")
    (outcome,) = await outcomes(nc)
    assert isinstance(outcome, SourceFailed)
    assert (outcome.kind, outcome.retryable, outcome.attempts) == (ErrorKind.UPSTREAM_ERROR, False, 3)
    assert upstream.calls["9"] == 3


async def test_past_deadline_is_answered_timeout_without_calling_upstream(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    upstream = ScriptedUpstream()

    async def adapter() -> ScriptedUpstream:
        return upstream

    request = a_request("5", deadline_s=0.05)
    await Bus(nc.jetstream(), producer="test").publish(request)
    await asyncio.sleep(0.1)  # let the deadline pass before the service exists: the premise, not a wait
    app = create_source_app(
        settings_for(fresh_nats_url, tmp_path), source=SourceKey.CSA, adapter_factory=adapter
    )
    async with app:

        async def answered() -> bool:
            return len(await outcomes(nc)) == 1

        await wait_until(answered, what="a timeout outcome")
    (outcome,) = await outcomes(nc)
    assert isinstance(outcome, SourceFailed)
    assert outcome.kind is ErrorKind.TIMEOUT
    assert upstream.calls == {}


async def test_a_redelivered_answered_request_republishes_the_same_outcome(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    upstream = ScriptedUpstream(script={"3": ["first", "second"]})

    async def adapter() -> ScriptedUpstream:
        return upstream

    settings = settings_for(fresh_nats_url, tmp_path)
    request = a_request("3")
    bus = Bus(nc.jetstream(), producer="test")
    async with create_source_app(settings, source=SourceKey.CSA, adapter_factory=adapter):
        await bus.publish(request)

        async def answered() -> bool:
            return len(await outcomes(nc)) == 1

        await wait_until(answered, what="the first outcome")
    # the same request again, as after a crash between publish and ack (a new message, same request id)
    again = Envelope.model_validate({**bus.envelope(request).model_dump(), "event_id": "redelivery-1"})
    await bus.publish(request, envelope=again)
    async with create_source_app(settings, source=SourceKey.CSA, adapter_factory=adapter):

        async def consumer_idle() -> bool:
            info = await nc.jetstream().consumer_info(EVENTS_STREAM, "source-csa")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await wait_until(consumer_idle, what="the redelivery handled")
    found = await outcomes(nc)
    assert len(found) == 1, found
    assert isinstance(found[0], SourceSynced)
    assert found[0].summary == {"data": "first"}
    assert upstream.calls["3"] == 1


async def test_poison_goes_to_the_dead_letter_stream_with_its_reason(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    async def adapter() -> ScriptedUpstream:
        return ScriptedUpstream()

    js = nc.jetstream()
    await js.publish("fmcsa.evt.sync_requested.csa.1", b"not json at all", stream=EVENTS_STREAM)
    async with create_source_app(
        settings_for(fresh_nats_url, tmp_path), source=SourceKey.CSA, adapter_factory=adapter
    ):

        async def dead_lettered() -> bool:
            return (await js.stream_info(DLQ_STREAM)).state.messages == 1

        await wait_until(dead_lettered, what="a dead letter")
        await Bus(js, producer="test").publish(a_request("2"))

        async def still_serving() -> bool:
            return len(await outcomes(nc)) == 1

        await wait_until(still_serving, what="the next request served after the poison")
    letter = await js.get_msg(DLQ_STREAM, 1)
    assert letter.subject == "fmcsa.dlq.source-csa.missing_header"
    assert letter.headers is not None
    assert letter.headers["Fmcsa-Dlq-Reason"] == "missing_header"
    assert letter.data == b"not json at all"


async def test_missing_credentials_answer_not_configured(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    upstream = ScriptedUpstream(
        configured=False,
        script={"4": [Failure(ErrorKind.NOT_CONFIGURED, retryable=False, message="webKey is not set")]},
    )

    async def adapter() -> ScriptedUpstream:
        return upstream

    async with create_source_app(
        settings_for(fresh_nats_url, tmp_path), source=SourceKey.CSA, adapter_factory=adapter
    ):
        await Bus(nc.jetstream(), producer="test").publish(a_request("4"))

        async def answered() -> bool:
            return len(await outcomes(nc)) == 1

        await wait_until(answered, what="a not_configured outcome")
    (outcome,) = await outcomes(nc)
    assert isinstance(outcome, SourceFailed)
    assert (outcome.kind, outcome.retryable) == (ErrorKind.NOT_CONFIGURED, False)


async def test_a_hung_request_holds_only_its_own_slot(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    """With 4 slots and one request hung upstream, the other requests all complete while it hangs.

    A pull batch of 4 worked until its slowest message is done would stop after the hung request's
    three batch mates: nothing more is fetched until the hang ends.
    """
    release = asyncio.Event()
    upstream = ScriptedUpstream(hold={"1": release})

    async def adapter() -> ScriptedUpstream:
        return upstream

    app = create_source_app(
        settings_for(fresh_nats_url, tmp_path, concurrency=4), source=SourceKey.CSA, adapter_factory=adapter
    )
    bus = Bus(nc.jetstream(), producer="test")
    hung = a_request("1")
    others = [a_request(str(dot)) for dot in range(2, 22)]
    async with app:
        await bus.publish(hung)

        async def hang_started() -> bool:
            return upstream.calls.get("1") == 1

        await wait_until(hang_started, what="the hung request in flight")
        await bus.publish_many(others)

        async def others_answered() -> bool:
            return len(await outcomes(nc)) >= len(others)

        await wait_until(others_answered, what="20 outcomes beside the hung request")
        answered = {o.request_id for o in await outcomes(nc)}
        assert answered == {r.request_id for r in others}, "the hung request is still pending"
        assert not release.is_set()
        release.set()

        async def hung_answered() -> bool:
            return len(await outcomes(nc)) == len(others) + 1

        await wait_until(hung_answered, what="the released request answered")
    assert upstream.calls["1"] == 1


async def test_stop_hands_back_a_delivery_that_does_not_finish_in_time(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    """A stop waits for in-flight work within its budget, then naks what is left: no ack wait to sit out."""
    release = asyncio.Event()
    upstream = ScriptedUpstream(hold={"8": release})

    async def adapter() -> ScriptedUpstream:
        return upstream

    # a stop budget of half a second; unacked, the request would come back only after 60 s
    settings = settings_for(fresh_nats_url, tmp_path, grace_s=1.0, source_ack_wait_s=60.0)
    request = a_request("8")
    async with create_source_app(settings, source=SourceKey.CSA, adapter_factory=adapter):
        await Bus(nc.jetstream(), producer="test").publish(request)

        async def in_flight() -> bool:
            return upstream.calls.get("8") == 1

        await wait_until(in_flight, what="the request in flight")
    assert await outcomes(nc) == []
    release.set()  # the next delivery does not hang
    async with create_source_app(settings, source=SourceKey.CSA, adapter_factory=adapter):

        async def answered() -> bool:
            return len(await outcomes(nc)) == 1

        # well inside the ack wait: only a nak at the stop brings it back this soon
        await wait_until(answered, what="the handed-back request answered by the next start", within_s=20)
    (outcome,) = await outcomes(nc)
    assert isinstance(outcome, SourceSynced)
    assert (outcome.request_id, outcome.attempts) == (request.request_id, 2)


async def test_a_source_with_two_upstream_hosts_binds_both_paces_to_the_bus(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    paces = [
        UpstreamPace(source="authority", base_url="http://qc.test/qc/services", ceiling=4.0, replica="r1"),
        UpstreamPace(source="authority", base_url="http://hub.test", ceiling=2.0, replica="r1"),
    ]

    async def adapter() -> ScriptedUpstream:
        return ScriptedUpstream()

    beats = await nc.jetstream().key_value(PACE_REPLICAS_BUCKET)

    async def live() -> set[str]:
        try:
            return set(await beats.keys())
        except nats.js.errors.NoKeysError:
            return set()

    app = create_source_app(
        settings_for(fresh_nats_url, tmp_path), source=SourceKey.CSA, adapter_factory=adapter, pace=paces
    )
    async with app:
        assert await live() == {f"{pace.key}.r1" for pace in paces}
    assert await live() == set()  # both heartbeats dropped at the stop


async def test_an_outcome_publish_waits_out_a_stream_that_does_not_answer_yet(fresh_nats_url: str) -> None:
    """No stream answers the first publishes (as while a cluster elects its leader): they are retried
    with the same event id until it does, and the outcome is stored once."""
    client = await nats.connect(fresh_nats_url)
    try:
        js = client.jetstream()
        now = datetime.now(UTC)
        outcome = SourceSynced(
            request_id=uuid4(),
            dot="5",
            source="csa",
            counts=Counts(fetched=1),
            attempts=1,
            started_at=now,
            finished_at=now,
        )
        bus = Bus(js, producer="test")
        envelope = bus.envelope(outcome)
        saved = SavedOutcome(subject_for(outcome), envelope.to_headers(), encode(outcome))

        async def declare_later() -> None:
            await asyncio.sleep(0.5)  # the stream appears only after the first publishes were refused
            await declare(js, Topology())

        later = asyncio.create_task(declare_later())
        await publish_outcome(bus, saved)  # without a retry: NoRespondersError at once
        await later
        await publish_outcome(bus, saved)  # a repeat of the event id is dropped by the stream
        assert [o.request_id for o in await outcomes(client)] == [outcome.request_id]
    finally:
        await client.drain()


def gauge(name: str, source: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"source": source})


async def test_the_runner_exports_the_age_of_its_oldest_successful_sync(
    nc: Client,
    fresh_nats_url: str,
    tmp_path: Path,
    wait_until: Any,
) -> None:
    gone = Failure(ErrorKind.NOT_FOUND, retryable=False, message="no such carrier")
    upstream = ScriptedUpstream(script={"9": [gone]})
    clock_now = [datetime.now(UTC)]

    async def adapter() -> ScriptedUpstream:
        return upstream

    app = create_source_app(
        settings_for(fresh_nats_url, tmp_path),
        source=SourceKey.CSA,
        adapter_factory=adapter,
        clock=lambda: clock_now[0],
    )
    async with app:
        await Bus(nc.jetstream(), producer="test").publish_many([a_request("8"), a_request("9")])

        async def answered() -> bool:
            return len(await outcomes(nc)) == 2

        await wait_until(answered, what="two outcomes")
        worker: Any = app.worker

        async def both_noted() -> bool:
            # the age row is written just after the ack, so an outcome on the bus may precede its row
            return (await worker.ages.oldest(clock_now[0]))[1] == 2

        await wait_until(both_noted, what="both carriers' age rows")
        clock_now[0] += timedelta(hours=2)  # the worker's next export reads the rows at this clock
        await worker.ages.export(str(SourceKey.CSA), clock_now[0])
        # read at once: no await between, so the worker's own 15 s export cannot set the gauges meanwhile
        tracked = gauge("fmcsa_source_carriers_tracked", "csa")
        age = gauge("fmcsa_source_oldest_sync_age_seconds", "csa")
    # carrier 8 synced, carrier 9 never did: both are two hours old, and both are counted
    assert tracked == 2
    assert age is not None
    assert 7200 <= age < 7200 + 60


def cut_in_pages(outcome: SourceSynced) -> tuple[SourceSynced, tuple[Event, ...]]:
    """A source's `paginate` (as violations'): the summary keeps 2 rows, the rest go in pages of 2."""
    rows = list(outcome.summary["rows"])  # type: ignore[arg-type]
    pages = tuple(
        ViolationsListed(
            request_id=outcome.request_id,
            dot=outcome.dot,
            offset=o,
            total=len(rows),
            rows=tuple(rows[o : o + 2]),
        )
        for o in range(2, len(rows), 2)
    )
    return outcome.model_copy(update={"summary": {"rows": rows[:2], "rows_total": len(rows)}}), pages  # type: ignore[dict-item]


async def test_pages_are_saved_with_the_outcome_published_before_it_and_again_with_it(
    nc: Client, fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    rows = [{"inspection": str(n)} for n in range(5)]

    class Listing(ScriptedUpstream):
        async def store(self, fetched: str, request: SyncRequested) -> Stored:
            return Stored(Counts(fetched=5, inserted=5), datetime.now(UTC), None, {"rows": rows})  # type: ignore[dict-item]

    upstream = Listing()

    async def adapter() -> ScriptedUpstream:
        return upstream

    settings = settings_for(fresh_nats_url, tmp_path)
    now = datetime.now(UTC)
    request = SyncRequested(
        request_id=uuid4(), dot="5", source="violations", trigger=Trigger.MANUAL, requested_by="test",
        requested_at=now, deadline=now + timedelta(minutes=10),
    )  # fmt: skip
    bus = Bus(nc.jetstream(), producer="test")
    app = {"source": SourceKey.VIOLATIONS, "adapter_factory": adapter, "paginate": cut_in_pages}
    async with create_source_app(settings, **app):
        await bus.publish(request)

        async def answered() -> bool:
            return len(await outcomes(nc)) == 1

        await wait_until(answered, what="the outcome")
    again = Envelope.model_validate({**bus.envelope(request).model_dump(), "event_id": "redelivery-1"})
    await bus.publish(request, envelope=again)
    async with create_source_app(settings, **app):

        async def consumer_idle() -> bool:
            info = await nc.jetstream().consumer_info(EVENTS_STREAM, "source-violations")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await wait_until(consumer_idle, what="the redelivery handled")
    published = [e for e in await events(nc) if not isinstance(e, SyncRequested)]
    assert [type(e).__name__ for e in published] == ["ViolationsListed", "ViolationsListed", "SourceSynced"]
    pages, outcome = published[:2], published[2]
    assert isinstance(outcome, SourceSynced)
    assert outcome.summary == {"rows": rows[:2], "rows_total": 5}
    assert [(p.offset, list(p.rows)) for p in pages if isinstance(p, ViolationsListed)] == [
        (2, rows[2:4]), (4, rows[4:])
    ]  # fmt: skip
    assert upstream.calls["5"] == 1  # the redelivery republished the saved pages and outcome, fetched nothing
