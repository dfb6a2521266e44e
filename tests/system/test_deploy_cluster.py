"""The cluster profile without Docker: three nats-server processes from the wheel run the compose
cluster's own configuration (deploy/nats/cluster.conf, with its addresses and folder rewritten to free
loopback ports and a temporary folder; its TLS files from a test CA and its users' passwords in the
environment, as compose gives them), the bus is declared with three replicas, and the node leading the
event stream is killed (SIGKILL) and restarted in the middle of a run. Every client connects over TLS
with a user: the test as `admin`, each service as its own.

- A plain publisher and a durable pull consumer lose nothing acknowledged, and the restarted node
  catches up: it then serves the whole stream after the other leader is killed too.
- The pipeline (scheduler, the three sources against the sandbox, the status projector, as processes
  that know all three nodes) answers every request in the stream with exactly one outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from fmcsa_embedded import Child, NatsServer, free_port
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.models import (
    CompanyRegistered,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncRequested,
    Trigger,
)
from fmcsa_events.permissions import ADMIN
from fmcsa_events.topology import EVENTS_STREAM, Topology, declare

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
NODE_NAMES = ("nats", "nats-2", "nats-3")  # the compose services' names, as cluster.conf routes them

WaitUntil = Callable[..., Awaitable[None]]

JS_TIMEOUT_S = 1.5
"""JetStream API timeout of the test's client: short, so polls during an election come back quickly."""

RETRY_PAUSE_S = 0.05
"""Pause between tries while there is no stream leader (no responders come back at once)."""

BUS_ERRORS = (nats.errors.Error, nats.js.errors.Error, TimeoutError)
"""What a client may see while the cluster elects a new leader: timeouts, no responders, 503s."""


@dataclass
class DeployedNode(NatsServer):
    """A nats-server running deploy/nats/cluster.conf, rewritten for loopback: the file's listen
    addresses become this node's free ports, its store folder a temporary one, its routes the other
    nodes' loopback cluster ports (its route to itself stays in, as in compose), its name `server_name`,
    its TLS files those of `files` (`/etc/nats/` is their folder), and the authorization block it
    includes is written in (the config runs from the store folder). The passwords come from `env`.
    """

    http_port: int = 0
    route_ports: dict[str, int] = field(default_factory=dict)
    files: Any = None  # tests/system/conftest.py's NatsDeployFiles (a conftest is not imported)

    def config_text(self) -> str:
        assert self.files is not None
        text = self.files.config("cluster").read_text()
        include = "include ./authorization.conf"
        rewrites = {
            include: (self.files.folder / "authorization.conf").read_text(),
            "$NATS_SERVER_NAME": f'"{self.server_name}"',
            '"0.0.0.0:4222"': f'"{self.host}:{self.port}"',
            '"0.0.0.0:6222"': f'"{self.host}:{self.cluster_port}"',
            '"0.0.0.0:8222"': f'"{self.host}:{self.http_port}"',
            '"/data/cluster"': f'"{self.store_dir.resolve() / "jetstream"}"',
            **{
                f"nats-route://{name}:6222": f"nats-route://{self.host}:{port}"
                for name, port in self.route_ports.items()
            },
        }
        for old, new in rewrites.items():
            assert old in text, f"deploy/nats/cluster.conf no longer has {old[:40]}; update this test with it"
            text = text.replace(old, new)
        return text


@dataclass
class Cluster:
    nodes: dict[str, DeployedNode]

    files: Any  # NatsDeployFiles

    @property
    def url(self) -> str:
        """All three nodes, comma-separated, over TLS: FMCSA_NATS_URL as deploy/cluster.env sets it."""
        return ",".join(f"tls://{node.host}:{node.port}" for node in self.nodes.values())

    async def connect(self, user: str = ADMIN) -> NatsClient:
        return await nats.connect(
            servers=self.url.split(","),
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            connect_timeout=2,
            name="deploy-cluster-test",
            user=user,
            password=self.files.passwords[user],
            tls=ssl.create_default_context(cafile=str(self.files.ca_file)),
        )

    def service_env(self, user: str) -> dict[str, str]:
        """What compose gives a service in the cluster profile: the URLs, the CA, its own user."""
        return {
            "FMCSA_NATS_URL": self.url,
            "FMCSA_NATS_TLS_CA_FILE": str(self.files.ca_file),
            "FMCSA_NATS_USER": user,
            "FMCSA_NATS_PASSWORD": self.files.passwords[user],
        }


@pytest.fixture
async def cluster(tmp_path: Path, wait_until: WaitUntil, nats_deploy_files: Any) -> AsyncIterator[Cluster]:
    """Three nodes, started and healthy: every node's /healthz answers 200, the check compose's
    `depends_on: {nats: service_healthy}` waits for before it starts a service."""
    route_ports = {name: free_port() for name in NODE_NAMES}
    nodes = {
        name: DeployedNode(
            store_dir=tmp_path / name,
            port=free_port(),
            server_name=name,
            cluster="fmcsa",
            cluster_port=route_ports[name],
            http_port=free_port(),
            route_ports=route_ports,
            log_file=tmp_path / f"{name}.log",
            files=nats_deploy_files,
            env=nats_deploy_files.env(),
        )
        for name in NODE_NAMES
    }
    try:
        for node in nodes.values():
            node.start()
        await wait_until(lambda: healthy(nodes.values()), what="three healthy nodes (/healthz)", within_s=30)
        yield Cluster(nodes, nats_deploy_files)
    finally:
        for node in nodes.values():
            node.stop()


async def healthy(nodes: Iterable[DeployedNode]) -> bool:
    async with httpx.AsyncClient(timeout=1) as client:
        for node in nodes:
            try:
                if (await client.get(f"http://{node.host}:{node.http_port}/healthz")).status_code != 200:
                    return False
            except httpx.TransportError:
                return False
    return True


async def declare_replicated(js: JetStreamContext, wait_until: WaitUntil) -> Topology:
    """Declare the bus with three replicas once the cluster has elected its meta leader."""
    topology = Topology(replicas=3)

    async def declared() -> bool:
        try:
            await declare(js, topology)
        except BUS_ERRORS:
            return False
        return True

    await wait_until(
        declared, what="a JetStream meta leader to declare the bus with three replicas", within_s=30
    )
    return topology


async def stream_leader(js: JetStreamContext) -> str | None:
    try:
        info = await js.stream_info(EVENTS_STREAM)
    except BUS_ERRORS:
        return None
    return info.cluster.leader if info.cluster else None


async def all_replicas_current(js: JetStreamContext) -> bool:
    """The stream has a leader and both followers are online, current and without lag."""
    try:
        info = await js.stream_info(EVENTS_STREAM)
    except BUS_ERRORS:
        return False
    cluster = info.cluster
    if cluster is None or cluster.leader is None or len(cluster.replicas or []) != 2:
        return False
    return all(p.current and not p.offline and not p.lag for p in cluster.replicas or [])


async def publish_surely(
    js: JetStreamContext, subject: str, data: bytes, msg_id: str, within_s: float = 20
) -> int:
    """Publish until acknowledged, always with the same Nats-Msg-Id, so a retry of a publish that was
    stored before its PubAck got lost is dropped by the server as a duplicate."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            ack = await js.publish(
                subject, data, timeout=1.0, stream=EVENTS_STREAM, headers={"Nats-Msg-Id": msg_id}
            )
            return ack.seq
        except BUS_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(RETRY_PAUSE_S)  # no stream leader yet: try again


async def read_stream(js: JetStreamContext, subject: str = "fmcsa.evt.>", within_s: float = 30) -> list[Any]:
    """Every message of the event stream on `subject`, read from the first through an ordered consumer.
    A read cut short by an election or a reconnect starts over, until `within_s` has passed."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await _read_once(js, subject)
        except BUS_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(RETRY_PAUSE_S)  # no stream leader yet: try again


async def _read_once(js: JetStreamContext, subject: str) -> list[Any]:
    last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    sub = await js.subscribe(
        subject,
        stream=EVENTS_STREAM,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    messages: list[Any] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=3)
            except nats.errors.TimeoutError:
                if subject == "fmcsa.evt.>":
                    raise  # the whole stream was asked for and it stopped short of its end: start over
                return messages  # nothing more on this subject up to the end of the stream
            messages.append(msg)
            if msg.metadata.sequence.stream >= last:
                return messages
    finally:
        await sub.unsubscribe()


# ---- 1. a plain publisher and consumer on the replicated stream ---------------------------------


async def test_a_replicated_stream_loses_nothing_when_its_leader_is_killed_and_restarted(
    cluster: Cluster, wait_until: WaitUntil
) -> None:
    nc = await cluster.connect()
    js = nc.jetstream(timeout=JS_TIMEOUT_S)
    try:
        await declare_replicated(js, wait_until)
        info = await js.stream_info(EVENTS_STREAM)
        assert info.config.num_replicas == 3
        await js.add_consumer(
            EVENTS_STREAM,
            ConsumerConfig(
                durable_name="deploy-probe",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                filter_subject="fmcsa.evt.deploy_probe.>",
                num_replicas=3,
                ack_wait=5,
            ),
        )
        puller = await js.pull_subscribe_bind("deploy-probe", stream=EVENTS_STREAM)
        consumed: list[int] = []

        async def consume(until: int) -> None:
            while len(set(consumed)) < until:
                try:
                    batch = await puller.fetch(50, timeout=1)
                except BUS_ERRORS:
                    continue
                for msg in batch:
                    consumed.append(int(msg.subject.rsplit(".", 1)[1]))
                    with contextlib.suppress(*BUS_ERRORS):  # an ack lost in an election: redelivered
                        await msg.ack_sync(timeout=2)

        total, half = 300, 150
        for i in range(half):
            await publish_surely(js, f"fmcsa.evt.deploy_probe.{i}", b"x", f"probe-{i}")
        await asyncio.wait_for(consume(half), timeout=20)
        acked_before_kill, cut = set(consumed), len(consumed)

        leader = await stream_leader(js)
        assert leader in cluster.nodes
        killed_at = time.monotonic()
        cluster.nodes[leader].kill()
        for i in range(half, total):  # the first of these wait for the election; none may be lost
            await publish_surely(js, f"fmcsa.evt.deploy_probe.{i}", b"x", f"probe-{i}")
        failover_s = time.monotonic() - killed_at
        cluster.nodes[leader].start()
        await asyncio.wait_for(consume(total), timeout=30)
        await wait_until(lambda: all_replicas_current(js), what="the restarted node to catch up", within_s=30)

        redelivered = [n for n in consumed[cut:] if n in acked_before_kill]
        assert set(consumed) == set(range(total))
        assert redelivered == [], "the consumer's acks did not survive the leader's death"

        # the restarted node now holds everything: kill the new leader too and read it all back
        second = await stream_leader(js)
        assert second is not None
        cluster.nodes[second].kill()
        await wait_until(
            lambda: _has_leader_other_than(js, second), what="a leader after the second kill", within_s=30
        )
        probes = await read_stream(js, "fmcsa.evt.deploy_probe.>")
        seen = Counter(int(m.subject.rsplit(".", 1)[1]) for m in probes)
        assert set(seen) == set(range(total))
        assert max(seen.values()) == 1, "a retried publish was stored twice"
        print(f"leader {leader} killed: {total - half} publishes got through in {failover_s:.1f}s; none lost")
    finally:
        await nc.close()


async def _has_leader_other_than(js: JetStreamContext, name: str) -> bool:
    leader = await stream_leader(js)
    return leader is not None and leader != name


# ---- 2. the pipeline on the cluster ------------------------------------------------------------

SERVICES = {
    # name: (module, its health/metrics port setting, its bus user)
    "status": ("fmcsa_status", "FMCSA_STATUS_HTTP_PORT", "status"),
    "csa": ("fmcsa_source_csa", "FMCSA_CSA_HTTP_PORT", "source-csa"),
    "violations": ("fmcsa_source_violations", "FMCSA_VIOLATIONS_HTTP_PORT", "source-violations"),
    "inspections": ("fmcsa_source_inspections", "FMCSA_INSPECTIONS_HTTP_PORT", "source-inspections"),
    "scheduler": ("fmcsa_scheduler", "FMCSA_SCHEDULER_HTTP_PORT", "scheduler"),
}
DOTS = [f"{2_000_001 + i}" for i in range(6)]
SOURCES = ("csa", "violations", "inspections")
TERMINAL = {"succeeded", "failed"}


@dataclass
class Pipeline:
    children: dict[str, Child]
    ports: dict[str, int]
    data_dir: Path
    logs: Path

    def tails(self) -> str:
        """The last lines of every service's log, for a failure message."""
        parts = []
        for name in self.children:
            log = self.logs / f"{name}.log"
            lines = log.read_text(errors="replace").splitlines()[-8:] if log.exists() else []
            parts.append(f"--- {name}\n" + "\n".join(lines))
        return "\n".join(parts)


@pytest.fixture
def pipeline(
    cluster: Cluster, sandbox_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pipeline]:
    """The services as processes, every one knowing all three nodes and declaring three replicas."""
    from fmcsa_cli.launcher import SANDBOX_API_KEY, SANDBOX_APP_TOKEN, SANDBOX_WEB_KEY

    for key in list(os.environ):  # nothing of the caller's own FMCSA_ settings (real keys!) leaks in
        if key.startswith("FMCSA_") and not key.startswith("FMCSA_TEST_"):
            monkeypatch.delenv(key)
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    env = {
        "FMCSA_REPLICAS": "3",
        "FMCSA_DATA_DIR": str(data_dir),
        "FMCSA_LOG_JSON": "true",
        "PYTHONUNBUFFERED": "1",
        "FMCSA_CSA_BASE_URL": f"{sandbox_url}/qc/services",
        "FMCSA_CSA_WEB_KEY": SANDBOX_WEB_KEY,
        "FMCSA_VIOLATIONS_BASE_URL": sandbox_url,
        "FMCSA_VIOLATIONS_APP_TOKEN": SANDBOX_APP_TOKEN,
        "FMCSA_INSPECTIONS_BASE_URL": sandbox_url,
        "FMCSA_INSPECTIONS_API_KEY": SANDBOX_API_KEY,
        **{f"FMCSA_{source.upper()}_RATE_PER_S": "50" for source in SOURCES},
        # five-minute slots pass in five seconds: every pair is due again every few seconds
        "FMCSA_SCHEDULER_CLOCK_SCALE": "60",
        "FMCSA_SCHEDULER_TICK_S": "0.2",
        # a marker whose release failed during the election ends at its request's deadline: 2 s here
        "FMCSA_SCHEDULER_DEADLINE_MINUTES": "2",
    }
    ports = {name: free_port() for name in SERVICES}
    children = {
        name: Child(
            name,
            [sys.executable, "-m", module],
            {**env, **cluster.service_env(user), port_env: str(ports[name])},
            log_path=logs / f"{name}.log",
        )
        for name, (module, port_env, user) in SERVICES.items()
    }
    try:
        for child in children.values():
            child.start()
        yield Pipeline(children, ports, data_dir, logs)
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            child.stop(grace_s=15)


async def publish_event(bus: Bus, event: Any, within_s: float = 30) -> None:
    """Publish one fact until acknowledged, with one envelope (one event id) for every try."""
    envelope = bus.envelope(event)
    deadline = time.monotonic() + within_s
    while True:
        try:
            await bus.publish(event, envelope=envelope)
            return
        except BUS_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(RETRY_PAUSE_S)  # no stream leader yet: try again


def manual_requests(wave: str) -> list[SyncRequested]:
    now = datetime.now(UTC)
    return [
        SyncRequested(
            request_id=uuid4(),
            dot=dot,
            source=source,
            trigger=Trigger.MANUAL,
            requested_by=f"deploy-test-{wave}",
            requested_at=now,
            deadline=now + timedelta(minutes=10),
        )
        for dot in DOTS
        for source in SOURCES
    ]


@dataclass
class Tally:
    """Requests and outcomes per request id, as the stream holds them."""

    requests: Counter[UUID] = field(default_factory=Counter)
    described: dict[UUID, str] = field(default_factory=dict)
    scheduled_seqs: list[int] = field(default_factory=list)  # stream sequences of the scheduler's requests
    outcomes: Counter[UUID] = field(default_factory=Counter)
    last_seq: int = 0
    undecodable: int = 0

    @property
    def unanswered(self) -> set[UUID]:
        return set(self.requests) - set(self.outcomes)


async def tally(js: JetStreamContext) -> Tally:
    found = Tally()
    for msg in await read_stream(js):
        found.last_seq = msg.metadata.sequence.stream
        decoded = decode(msg.headers, msg.data)
        if not isinstance(decoded, Decoded):
            found.undecodable += 1
        elif isinstance(decoded.event, SyncRequested):
            found.requests[decoded.event.request_id] += 1
            request = decoded.event
            if request.trigger is not Trigger.MANUAL:
                found.scheduled_seqs.append(msg.metadata.sequence.stream)
            found.described[request.request_id] = (
                f"{request.request_id} {request.source} {request.dot} by {request.requested_by} "
                f"at seq {msg.metadata.sequence.stream}"
            )
        elif isinstance(decoded.event, SourceSynced | SourceFailed):
            found.outcomes[decoded.event.request_id] += 1
    return found


def projection(data_dir: Path) -> tuple[int, dict[str, str]]:
    """The status projection's applied position and each request's state, read from its SQLite file."""
    import sqlite3

    path = data_dir / "status.sqlite3"
    if not path.exists():
        return 0, {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        try:
            position = db.execute("SELECT seq FROM status_position WHERE id = 1").fetchone()
            rows = db.execute("SELECT request_id, status FROM status_sync_log").fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return 0, {}
    return (int(position[0]) if position else 0), {str(r): str(s) for r, s in rows}


async def services_ready(pipeline: Pipeline) -> bool:
    async with httpx.AsyncClient(timeout=1) as client:
        for name, port in pipeline.ports.items():
            if not pipeline.children[name].alive:
                pytest.fail(f"{name} exited before it was ready\n{pipeline.tails()}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/ready")).status_code != 200:
                    return False
            except httpx.TransportError:
                return False
    return True


async def test_every_request_ends_in_exactly_one_outcome_when_a_node_dies_mid_run(
    cluster: Cluster, pipeline: Pipeline, wait_until: WaitUntil
) -> None:
    started = time.monotonic()
    phases: dict[str, float] = {}
    nc = await cluster.connect()
    js = nc.jetstream(timeout=JS_TIMEOUT_S)
    try:
        # the services declare the bus themselves, from FMCSA_REPLICAS=3; the test declares nothing
        await wait_until(
            lambda: services_ready(pipeline), what="every service ready on the cluster", within_s=45
        )
        info = await js.stream_info(EVENTS_STREAM)
        assert info.config.num_replicas == 3, "FMCSA_REPLICAS=3 did not reach the stream"
        consumer = await js.consumer_info(EVENTS_STREAM, "source-csa")
        assert consumer.config.num_replicas == 3, "FMCSA_REPLICAS=3 did not reach the source consumers"

        bus = Bus(js, producer="deploy-test")
        for source in SOURCES:
            await publish_event(
                bus, ScheduleChanged(source=source, interval_minutes=5, changed_by="deploy-test")
            )
        for dot in DOTS:
            await publish_event(bus, CompanyRegistered(dot=dot, registered_by="deploy-test"))
        for request in manual_requests("before"):
            await publish_event(bus, request)

        async def running() -> bool:
            found = await tally(js)
            return len(found.outcomes) >= len(DOTS) * len(SOURCES) and bool(found.scheduled_seqs)

        await wait_until(
            running, what="a first wave of outcomes and the scheduler's first requests", within_s=30
        )
        phases["first outcomes and scheduled requests"] = time.monotonic() - started

        leader = await stream_leader(js)
        assert leader in cluster.nodes
        cluster.nodes[leader].kill()  # SIGKILL the node leading the event stream, mid-run
        for request in manual_requests("during"):
            await publish_event(bus, request)
        await wait_until(lambda: _has_leader_other_than(js, leader), what="a new stream leader", within_s=30)
        phases["new stream leader"] = time.monotonic() - started
        cluster.nodes[leader].start()
        for request in manual_requests("after"):
            await publish_event(bus, request)
        await wait_until(lambda: all_replicas_current(js), what="the restarted node to catch up", within_s=30)
        phases["restarted node current"] = time.monotonic() - started
        restarted_at = (await js.stream_info(EVENTS_STREAM)).state.last_seq

        async def scheduling_again() -> bool:
            return any(seq > restarted_at for seq in (await tally(js)).scheduled_seqs)

        await wait_until(scheduling_again, what="the scheduler's requests after the restart", within_s=30)
        phases["scheduler publishing again"] = time.monotonic() - started

        pipeline.children["scheduler"].stop(grace_s=15)  # no new requests from here on
        last: list[Tally] = []

        async def all_answered() -> bool:
            last.append(await tally(js))
            return not last[-1].unanswered

        try:
            await wait_until(all_answered, what="an outcome for every request", within_s=40)
        except pytest.fail.Exception:
            missing = [last[-1].described[r] for r in last[-1].unanswered]
            pytest.fail(f"{len(missing)} requests unanswered: {missing}\n{pipeline.tails()}")
        found = last[-1]
        phases["every request answered"] = time.monotonic() - started
        scheduled = len(found.scheduled_seqs)
        doubled_requests = {r: n for r, n in found.requests.items() if n > 1}
        doubled_outcomes = {r: n for r, n in found.outcomes.items() if n > 1}
        orphans = set(found.outcomes) - set(found.requests)
        assert doubled_requests == {}, f"requests stored twice: {doubled_requests}"
        assert doubled_outcomes == {}, f"requests answered twice: {doubled_outcomes}"
        assert orphans == set(), f"outcomes of requests the stream never held: {orphans}"
        assert found.undecodable == 0

        async def projected() -> bool:
            position, _ = projection(pipeline.data_dir)
            return position >= found.last_seq

        await wait_until(projected, what=f"the status projection at position {found.last_seq}", within_s=30)
        _, states = projection(pipeline.data_dir)
        unsettled = {r: states.get(str(r)) for r in found.requests if states.get(str(r)) not in TERMINAL}
        assert unsettled == {}, f"requests the projection does not show as finished: {unsettled}"
        crashed = [
            name for name, child in pipeline.children.items() if name != "scheduler" and not child.alive
        ]
        assert crashed == [], f"services died: {crashed}\n{pipeline.tails()}"
        print(
            f"leader {leader} killed and restarted: {len(found.requests)} requests "
            f"({scheduled} from the scheduler), each with exactly one outcome, all projected; "
            + ", ".join(f"{what} at {at:.1f}s" for what, at in phases.items())
        )
    finally:
        await nc.close()
