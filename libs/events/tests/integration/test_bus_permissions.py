"""The bus's users and permissions on a real nats-server from the wheel, configured with the block
`render_authorization` makes (what `./fmcsa up` and deploy/ run): every event type is published by its
authors only, the JetStream admin calls are refused to every service, and nobody gets in without a
password.

A refused publish gets no PubAck (the server drops it and tells the client `Permissions Violation`); each
check asserts the violation, the missing ack and that the stream did not grow.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig

from fmcsa_embedded import NatsServer
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import encode
from fmcsa_events.models import (
    EVENT_TYPES,
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    ChangeKind,
    CompanyRegistered,
    CompanyRemoved,
    Counts,
    ErrorKind,
    Event,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    Trigger,
    ViolationsListed,
    WebhookDestination,
    WebhookResendRequested,
)
from fmcsa_events.permissions import (
    ADMIN,
    GATEWAY,
    NOTIFIER,
    SCHEDULER,
    SERVICE_USERS,
    STATUS,
    USERS,
    render_authorization,
)
from fmcsa_events.reader import read_stream
from fmcsa_events.subjects import dead_letter, subject_for
from fmcsa_events.topology import (
    DLQ_STREAM,
    EVENTS_STREAM,
    INFLIGHT_BUCKET,
    STATE_BUCKET,
    STATUS_SNAPSHOTS_BUCKET,
    Topology,
    declare,
    source_durable,
)

REFUSED_WITHIN_S = 1.0
"""How long a refused request waits for the answer it never gets (a violation comes back at once)."""

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def examples() -> dict[str, Event]:
    """One event of every type; the source-scoped ones are the csa source's (pages of violation rows:
    the violations source's)."""
    request = uuid4()
    return {
        "company_registered": CompanyRegistered(dot="1234567"),
        "company_removed": CompanyRemoved(dot="1234567"),
        "schedule_changed": ScheduleChanged(source="csa", interval_minutes=60),
        "sync_requested": SyncRequested(
            request_id=request,
            dot="1234567",
            source="csa",
            trigger=Trigger.MANUAL,
            requested_at=NOW,
            deadline=NOW + timedelta(minutes=30),
        ),
        "source_synced": SourceSynced(
            request_id=request,
            dot="1234567",
            source="csa",
            counts=Counts(),
            attempts=1,
            started_at=NOW,
            finished_at=NOW,
        ),
        "source_failed": SourceFailed(
            request_id=uuid4(),  # its own: an outcome's event id is `outcome:<request_id>`
            dot="1234567",
            source="csa",
            kind=ErrorKind.TIMEOUT,
            retryable=True,
            message="m",
            detail="d",
            attempts=1,
            started_at=NOW,
            finished_at=NOW,
        ),
        "sync_attempt_failed": SyncAttemptFailed(
            request_id=uuid4(),
            dot="1234567",
            source="csa",
            attempt=1,
            max_attempts=3,
            kind=ErrorKind.UPSTREAM_ERROR,
            message="m",
            retry_at=NOW,
            first_attempt_at=NOW,
        ),
        "carrier_data_changed": CarrierDataChanged(
            request_id=request,
            dot="1234567",
            source="csa",
            kind=ChangeKind.BASIC_ALERT_STARTED,
            subject="unsafe_driving",
            observed_at=NOW,
        ),
        "violations_listed": ViolationsListed(
            request_id=request, dot="1234567", offset=500, total=501, rows=({"inspection": "1"},)
        ),
        "alert_rule_changed": AlertRuleChanged(
            name="forged",
            kinds=(ChangeKind.BASIC_ALERT_STARTED,),
            destinations=(WebhookDestination(url="https://example.invalid/hook", sealed_secret="x"),),
        ),
        "alert_rule_removed": AlertRuleRemoved(name="forged"),
        "webhook_resend_requested": WebhookResendRequested(delivery_id="0" * 32),
    }


AUTHORS: dict[str, set[str]] = {
    "company_registered": {GATEWAY},
    "company_removed": {GATEWAY},
    "schedule_changed": {GATEWAY},
    "sync_requested": {GATEWAY, SCHEDULER},
    "source_synced": {"source-csa"},
    "source_failed": {"source-csa"},
    "sync_attempt_failed": {"source-csa"},
    "carrier_data_changed": {"source-csa", STATUS},  # status: its risk_changed facts
    "violations_listed": {"source-violations"},  # the one source that lists pages
    "alert_rule_changed": {GATEWAY},
    "alert_rule_removed": {GATEWAY},
    "webhook_resend_requested": {GATEWAY, NOTIFIER},
}
"""Who may publish each example (and admin, always). Written out here, not derived from the map."""


class Secured:
    def __init__(self, server: NatsServer, passwords: dict[str, str]) -> None:
        self.server = server
        self.passwords = passwords
        self.violations: dict[str, list[str]] = {}

    async def connect(self, user: str) -> Client:
        seen = self.violations.setdefault(user, [])

        async def on_error(error: Exception) -> None:
            seen.append(str(error))

        return await nats.connect(
            self.server.url,
            user=user,
            password=self.passwords[user],
            error_cb=on_error,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            name=f"permissions-test-{user}",
        )


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    """A fresh nats-server with every user of `USERS`, random passwords, JetStream."""
    passwords = {user: secrets.token_urlsafe(24) for user in USERS}
    server = NatsServer(
        store_dir=tmp_path / "nats",
        log_file=tmp_path / "nats.log",
        authorization=render_authorization(passwords),
    ).start()
    try:
        yield Secured(server, passwords)
    finally:
        server.stop()


@pytest.fixture
async def admin(secured: Secured) -> AsyncIterator[JetStreamContext]:
    nc = await secured.connect(ADMIN)
    js = nc.jetstream()
    await declare(js, Topology())
    try:
        yield js
    finally:
        await nc.close()


async def last_seq(js: JetStreamContext, stream: str = EVENTS_STREAM) -> int:
    return int((await js.stream_info(stream)).state.last_seq)


async def try_publish(js: JetStreamContext, event: Event, producer: str) -> bool:
    """True if JetStream acknowledged the event; False if no ack came (refused)."""
    try:
        await Bus(js, producer=producer, timeout_s=REFUSED_WITHIN_S).publish(event)
    except nats.errors.TimeoutError:
        return False
    return True


@pytest.mark.parametrize("user", [*SERVICE_USERS])
async def test_a_service_publishes_only_the_events_it_authors(
    secured: Secured, admin: JetStreamContext, user: str
) -> None:
    nc = await secured.connect(user)
    try:
        js = nc.jetstream()
        before = await last_seq(admin)
        wanted = {name: user in authors for name, authors in AUTHORS.items()}
        events = examples()
        got = dict(
            zip(
                events,
                await asyncio.gather(*(try_publish(js, e, user) for e in events.values())),
                strict=True,
            )
        )
        await nc.flush()
    finally:
        await nc.close()
    assert got == wanted
    assert await last_seq(admin) == before + sum(wanted.values()), "a refused event reached the stream"
    refused = [subject_for(events[name]) for name, ok in wanted.items() if not ok]
    for subject in refused:
        assert any("permissions violation" in v.lower() and subject in v for v in secured.violations[user]), (
            subject,
            secured.violations[user],
        )


@pytest.mark.parametrize("other", ["violations", "inspections"])
async def test_a_source_cannot_publish_another_sources_outcomes_or_changes(
    secured: Secured, admin: JetStreamContext, other: str
) -> None:
    nc = await secured.connect("source-csa")
    forged = [
        SourceSynced.model_validate({**examples()["source_synced"].model_dump(), "source": other}),
        SourceFailed.model_validate({**examples()["source_failed"].model_dump(), "source": other}),
        CarrierDataChanged(
            request_id=uuid4(),
            dot="1234567",
            source=other,
            kind=ChangeKind.VIOLATIONS_ADDED if other == "violations" else ChangeKind.CRASHES_ADDED,
            subject="total",
            observed_at=NOW,
        ),
    ]
    before = await last_seq(admin)
    try:
        results = await asyncio.gather(*(try_publish(nc.jetstream(), e, "source-csa") for e in forged))
    finally:
        await nc.close()
    assert results == [False, False, False]
    assert await last_seq(admin) == before


async def test_dead_letters_key_values_and_inboxes_are_each_services_own(
    secured: Secured, admin: JetStreamContext
) -> None:
    """A service dead-letters under its own name only; only the schedulers and the gateway write
    in-flight markers, only the scheduler its state; nobody publishes into a reply inbox."""
    cases = [  # (user, subject, stream or None for a plain publish, allowed)
        ("status", dead_letter("status", "not_json"), DLQ_STREAM, True),
        ("source-csa", dead_letter("source-csa", "not_json"), DLQ_STREAM, True),
        ("source-csa", dead_letter("status", "not_json"), DLQ_STREAM, False),
        ("notifier", dead_letter("source-violations", "not_json"), DLQ_STREAM, False),
        ("gateway", f"$KV.{INFLIGHT_BUCKET}.csa.1234567", f"KV_{INFLIGHT_BUCKET}", True),
        ("scheduler", f"$KV.{STATE_BUCKET}.scheduler.status", f"KV_{STATE_BUCKET}", True),
        ("source-csa", f"$KV.{INFLIGHT_BUCKET}.csa.1234567", f"KV_{INFLIGHT_BUCKET}", False),
        ("notifier", f"$KV.{STATE_BUCKET}.scheduler.status", f"KV_{STATE_BUCKET}", False),
        ("gateway", f"$KV.{STATE_BUCKET}.scheduler.status", f"KV_{STATE_BUCKET}", False),
    ]
    wrong = []
    for user, subject, stream, allowed in cases:
        before = await last_seq(admin, stream)
        nc = await secured.connect(user)
        try:
            await nc.jetstream().publish(subject, b"{}", timeout=REFUSED_WITHIN_S, stream=stream)
            acked = True
        except nats.errors.TimeoutError:
            acked = False
        finally:
            await nc.close()
        grew = await last_seq(admin, stream) > before
        if (acked, grew) != (allowed, allowed):
            wrong.append(f"{user} -> {subject}: acked={acked} stored={grew} (allowed={allowed})")
    assert not wrong, wrong
    for user in SERVICE_USERS:  # a forged reply: e.g. a PubAck for a publish that was never stored
        nc = await secured.connect(user)
        try:
            await nc.publish("_INBOX.someone.else", b'{"stream":"FMCSA_EVENTS","seq":1}')
            await nc.flush()
            # the server's -ERR reaches the error callback as a task of its own: give it its turn
            for _ in range(100):
                if any("_inbox.someone.else" in v.lower() for v in secured.violations[user]):
                    break
                await asyncio.sleep(0.02)  # poll interval: the server's error line arrives on its own
        finally:
            await nc.close()
        assert any("_inbox.someone.else" in v.lower() for v in secured.violations[user]), user


async def test_only_the_status_service_writes_its_snapshots_and_retires_them_without_a_purge(
    secured: Secured, admin: JetStreamContext
) -> None:
    """The status user puts, lists and reads back an object of the snapshots' store and retires the
    chunks of an old one with a rollup message (what `fmcsa_status.snapshot` does); any other service
    may read it (like the event stream) but not write it."""
    stream = f"OBJ_{STATUS_SNAPSHOTS_BUCKET}"
    nc = await secured.connect(STATUS)
    try:
        js = nc.jetstream()
        store = await js.object_store(STATUS_SNAPSHOTS_BUCKET)
        info = await store.put("snapshot-a", b"x" * 300_000)  # three chunks
        assert [o.name for o in await store.list()] == ["snapshot-a"]
        assert (await store.get("snapshot-a")).data == b"x" * 300_000
        chunks = f"$O.{STATUS_SNAPSHOTS_BUCKET}.C.{info.nuid}"
        await js.publish(chunks, b"", headers={"Nats-Rollup": "sub"})
        assert (await admin.stream_info(stream)).state.messages == 2  # the meta and one empty chunk
    finally:
        await nc.close()
    assert not secured.violations[STATUS], secured.violations[STATUS]
    before = await last_seq(admin, stream)
    nc = await secured.connect(GATEWAY)
    try:
        store = await nc.jetstream(timeout=REFUSED_WITHIN_S).object_store(STATUS_SNAPSHOTS_BUCKET)
        assert (await store.get_info("snapshot-a")).name == "snapshot-a"  # its chunks are gone: meta only
        with pytest.raises(nats.errors.TimeoutError):
            await nc.jetstream(timeout=REFUSED_WITHIN_S).publish(
                f"$O.{STATUS_SNAPSHOTS_BUCKET}.C.forged", b"x", timeout=REFUSED_WITHIN_S
            )
    finally:
        await nc.close()
    assert await last_seq(admin, stream) == before


@pytest.mark.parametrize("user", [*SERVICE_USERS])
async def test_no_service_deletes_or_purges_a_stream_or_deletes_a_consumer(
    secured: Secured, admin: JetStreamContext, user: str
) -> None:
    await Bus(admin, producer="test").publish(examples()["company_registered"])
    await admin.publish(dead_letter("status", "not_json"), b"x", stream=DLQ_STREAM)
    nc = await secured.connect(user)
    js = nc.jetstream(timeout=REFUSED_WITHIN_S)
    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "delete FMCSA_EVENTS": lambda: js.delete_stream(EVENTS_STREAM),
        "delete FMCSA_DLQ": lambda: js.delete_stream(DLQ_STREAM),
        "delete a bucket": lambda: js.delete_key_value(INFLIGHT_BUCKET),
        "purge FMCSA_DLQ": lambda: js.purge_stream(DLQ_STREAM),
        "delete a message": lambda: js.delete_msg(DLQ_STREAM, 1),
        "delete source-csa's consumer": lambda: js.delete_consumer(EVENTS_STREAM, source_durable("csa")),
        "create a stream of its own": lambda: js.add_stream(StreamConfig(name="MINE", subjects=["mine.>"])),
    }

    async def refused(attempt: Callable[[], Awaitable[object]]) -> bool:
        try:  # bounded here too: nats-py's delete_msg ignores the context's timeout and waits 5 s
            await asyncio.wait_for(attempt(), REFUSED_WITHIN_S + 0.5)
        except TimeoutError:  # nats.errors.TimeoutError is one
            return True
        return False

    try:
        results = await asyncio.gather(*(refused(a) for a in attempts.values()))
        await nc.flush()
    finally:
        await nc.close()
    assert dict(zip(attempts, results, strict=True)) == dict.fromkeys(attempts, True)
    assert (await admin.stream_info(EVENTS_STREAM)).state.messages == 1
    assert (await admin.stream_info(DLQ_STREAM)).state.messages == 1
    assert (await admin.consumer_info(EVENTS_STREAM, source_durable("csa"))).name == source_durable("csa")
    assert len(secured.violations[user]) >= len(attempts)


async def test_admin_may_delete_and_purge(admin: JetStreamContext) -> None:
    await admin.publish(dead_letter("status", "not_json"), b"x", stream=DLQ_STREAM)
    assert await admin.purge_stream(DLQ_STREAM)
    assert (await admin.stream_info(DLQ_STREAM)).state.messages == 0
    assert await admin.delete_consumer(EVENTS_STREAM, source_durable("csa"))
    assert await admin.delete_stream(EVENTS_STREAM)
    streams = await admin.streams_info()
    assert EVENTS_STREAM not in {s.config.name for s in streams}


@pytest.mark.parametrize("user", [*SERVICE_USERS])
async def test_every_service_can_declare_the_whole_bus_on_an_empty_server(
    secured: Secured, user: str
) -> None:
    """Any service may start first: its credential creates every stream, consumer and bucket, and
    reads the stream the way the services do (an ordered consumer)."""
    nc = await secured.connect(user)
    try:
        js = nc.jetstream()
        await declare(js, Topology())
        await declare(js, Topology(stream_max_bytes=4 * 1024**3))  # an edited limit: an update
        assert (await js.stream_info(EVENTS_STREAM)).config.max_bytes == 4 * 1024**3
        sub = await js.subscribe("fmcsa.evt.>", ordered_consumer=True, config=ConsumerConfig())
        await sub.unsubscribe()
    finally:
        await nc.close()
    assert not secured.violations[user], secured.violations[user]


@pytest.mark.parametrize("user", [GATEWAY, SCHEDULER, STATUS, NOTIFIER])
async def test_the_services_that_follow_the_stream_may_read_it_with_the_ordered_follower(
    secured: Secured, admin: JetStreamContext, user: str
) -> None:
    """The projector, the rebuild, the scheduler's folds, a backtest and the notifier's rule history read
    through `OrderedFollower` (an ack-less pull consumer): its fetches are allowed, nothing else."""
    await Bus(admin, producer="test").publish(CompanyRegistered(dot="7"))
    nc = await secured.connect(user)
    try:
        read = [d.seq async for d in read_stream(nc.jetstream())]
    finally:
        await nc.close()
    assert read == [1]
    assert not secured.violations[user], secured.violations[user]


@pytest.mark.parametrize(
    "credential",
    [{}, {"user": "gateway", "pass": "wrong-password-0123456789"}, {"user": "nobody", "pass": "x" * 20}],
    ids=["none", "wrong-password", "unknown-user"],
)
async def test_a_connection_without_a_valid_password_is_refused(
    secured: Secured, credential: dict[str, str]
) -> None:
    """Spoken in the NATS protocol itself (INFO, CONNECT, PING), so the server's own answer is read."""
    reader, writer = await asyncio.open_connection(secured.server.host, secured.server.port)
    try:
        info = await asyncio.wait_for(reader.readline(), 5)
        assert info.startswith(b"INFO ")
        assert b'"auth_required":true' in info
        connect = {"verbose": False, "pedantic": False, "protocol": 1, **credential}
        writer.write(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.strip() == b"-ERR 'Authorization Violation'"


async def test_a_valid_password_is_let_in(secured: Secured) -> None:
    reader, writer = await asyncio.open_connection(secured.server.host, secured.server.port)
    try:
        await asyncio.wait_for(reader.readline(), 5)
        connect = {"verbose": False, "user": "status", "pass": secured.passwords["status"]}
        writer.write(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.strip() == b"PONG"


def test_every_event_type_has_an_author_besides_admin() -> None:
    """A new event type without a publisher in the map would be refused to every service."""
    published = {subject_for(event): name for name, event in examples().items()}
    assert set(AUTHORS) == {e.TYPE for e in examples().values()} == {t.TYPE for t in EVENT_TYPES}
    for subject, name in published.items():
        assert AUTHORS[name], f"nobody may publish {subject}"
    status_authors = {name for name, authors in AUTHORS.items() if STATUS in authors}
    assert status_authors == {"carrier_data_changed"}, "the status service publishes change facts only"
    assert encode(examples()["company_registered"])  # the examples are valid, encodable events
