"""Source services as deployed: separate processes on a real nats-server against the sandbox over HTTP.

Covers issue 5's proofs: each source alone, isolation, redelivery after a crash between publish and
ack, two replicas sharing one durable consumer, and every magic DOT's outcome.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import nats
import pytest
from nats.aio.client import Client

from fmcsa_cli.launcher import Launcher, bus_credential_env
from fmcsa_embedded import Child, free_port
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded
from fmcsa_events.models import (
    CarrierDataChanged,
    ErrorKind,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    Trigger,
)
from fmcsa_events.reader import read_stream
from fmcsa_events.topology import Topology, declare

pytestmark = pytest.mark.system

FAST = {
    # the sandbox is unlimited by default; let the clients go fast and give up fast
    "FMCSA_CSA_RATE_PER_S": "50",
    "FMCSA_VIOLATIONS_RATE_PER_S": "50",
    "FMCSA_INSPECTIONS_RATE_PER_S": "50",
    "FMCSA_AUTHORITY_RATE_PER_S": "50",
    "FMCSA_AUTHORITY_DATAHUB_RATE_PER_S": "50",
    "FMCSA_CSA_CONCURRENCY": "16",
    "FMCSA_INSPECTIONS_READ_TIMEOUT_S": "1",
    "FMCSA_CSA_MAX_ATTEMPTS": "2",
    "FMCSA_LOG_JSON": "true",
    "FMCSA_SOURCE_ACK_WAIT_S": "3",  # a killed consumer's message comes back after 3 s, not 60
}


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FMCSA_") and key != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


def launch(tmp_path: Path, services: list[str], **env: str) -> Launcher:
    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        services=services,
        extra_env={**FAST, **env},
        nats_sync_always=False,
    )
    launcher.start()
    return launcher


@pytest.fixture
async def bus_client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    clients: list[Client] = []

    async def connect(launcher: Launcher) -> Client:
        assert launcher.nats is not None
        client = await nats.connect(launcher.nats.url, **launcher.bus_admin())
        await declare(client.jetstream(), Topology())
        clients.append(client)
        return client

    yield connect
    for client in clients:
        # the launcher may have stopped the server first (a reconnecting client may find its socket reset)
        with contextlib.suppress(nats.errors.Error, ConnectionError):
            await client.close()


def request_for(source: str, dot: str, *, minutes: int = 5) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source=source,
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(minutes=minutes),
    )


async def outcomes_by_request(nc: Client) -> dict[UUID, list[SourceSynced | SourceFailed]]:
    found: dict[UUID, list[SourceSynced | SourceFailed]] = {}
    async for delivered in read_stream(nc.jetstream(), subject="fmcsa.evt.*.*.*"):
        if isinstance(delivered.decoded, Decoded) and isinstance(
            event := delivered.decoded.event, SourceSynced | SourceFailed
        ):
            found.setdefault(event.request_id, []).append(event)
    return found


async def wait_for_outcomes(
    nc: Client, requests: list[SyncRequested], wait_until: Any, within_s: float = 60
) -> dict[UUID, list[SourceSynced | SourceFailed]]:
    wanted = {r.request_id for r in requests}
    seen: dict[UUID, list[SourceSynced | SourceFailed]] = {}

    async def all_answered() -> bool:
        nonlocal seen
        seen = await outcomes_by_request(nc)
        return wanted <= set(seen)

    await wait_until(all_answered, what=f"outcomes for {len(wanted)} requests", within_s=within_s)
    return seen


@pytest.mark.parametrize("source", ["csa", "violations", "inspections", "authority"])
async def test_each_source_runs_alone_with_only_nats_and_the_sandbox(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    clean_env(monkeypatch)
    launcher = launch(tmp_path, ["sandbox", source])
    try:
        nc = await bus_client(launcher)
        requests = [request_for(source, "2847193"), request_for(source, "99000001")]
        await Bus(nc.jetstream(), producer="test").publish_many(requests)
        seen = await wait_for_outcomes(nc, requests, wait_until)
    finally:
        launcher.stop()
    known, unknown = (seen[r.request_id] for r in requests)
    assert len(known) == 1
    assert isinstance(known[0], SourceSynced), known
    assert known[0].counts.fetched > 0
    assert known[0].summary
    assert len(unknown) == 1
    if source == "violations":  # Socrata answers [] for an unknown DOT: a clean carrier
        assert isinstance(unknown[0], SourceSynced)
        assert unknown[0].counts.fetched == 0
    else:
        assert isinstance(unknown[0], SourceFailed)
        assert unknown[0].kind is ErrorKind.NOT_FOUND


async def test_magic_dots_end_in_their_documented_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    clean_env(monkeypatch)
    # the hang's timeout is final after two deliveries, as csa's errors are (FAST): one backoff, not four
    launcher = launch(
        tmp_path, ["sandbox", "csa", "violations", "inspections"], FMCSA_INSPECTIONS_MAX_ATTEMPTS="2"
    )
    expected: dict[tuple[str, str], tuple[type, ErrorKind | None]] = {
        ("csa", "99100001"): (SourceFailed, ErrorKind.UPSTREAM_ERROR),
        ("violations", "99200001"): (SourceSynced, None),
        ("inspections", "99300001"): (SourceFailed, ErrorKind.TIMEOUT),
        ("csa", "99400001"): (SourceFailed, ErrorKind.UPSTREAM_ERROR),
        ("violations", "99500001"): (SourceSynced, None),
        ("csa", "99600001"): (SourceSynced, None),
        ("csa", "99000042"): (SourceFailed, ErrorKind.NOT_FOUND),
        ("inspections", "99000042"): (SourceFailed, ErrorKind.NOT_FOUND),
    }
    try:
        nc = await bus_client(launcher)
        requests = {key: request_for(*key) for key in expected}
        await Bus(nc.jetstream(), producer="test").publish_many(list(requests.values()))
        seen = await wait_for_outcomes(nc, list(requests.values()), wait_until, within_s=120)
    finally:
        launcher.stop()
    for key, (cls, kind) in expected.items():
        (outcome,) = seen[requests[key].request_id]
        assert isinstance(outcome, cls), (key, outcome)
        if kind is not None:
            assert isinstance(outcome, SourceFailed)
            assert outcome.kind is kind, (key, outcome)
            assert outcome.retryable is False
    synced_violations = seen[requests[("violations", "99500001")].request_id][0]
    assert isinstance(synced_violations, SourceSynced)
    assert synced_violations.counts.fetched == 2500
    not_public = seen[requests[("csa", "99600001")].request_id][0]
    assert isinstance(not_public, SourceSynced)
    assert "not_public" in str(not_public.summary)


async def test_a_valid_empty_answer_is_held_back_and_the_next_read_clears_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    """The drop guard end to end: 99500002's second read is a valid empty page. The violations source
    keeps what it holds, says `suspect_drop` (an attempt that failed, with the counts), reads again and,
    the answer complete again, ends synced with every violation unchanged and no change fact."""
    clean_env(monkeypatch)
    launcher = launch(tmp_path, ["sandbox", "violations"])
    try:
        nc = await bus_client(launcher)
        bus = Bus(nc.jetstream(), producer="test")
        baseline = request_for("violations", "99500002")
        await bus.publish(baseline)
        (first,) = (await wait_for_outcomes(nc, [baseline], wait_until, within_s=60))[baseline.request_id]
        assert isinstance(first, SourceSynced)
        held = first.counts.fetched
        assert held > 0
        hiccup = request_for("violations", "99500002")
        await bus.publish(hiccup)
        (second,) = (await wait_for_outcomes(nc, [hiccup], wait_until, within_s=60))[hiccup.request_id]
        events = [
            d.decoded.event
            async for d in read_stream(nc.jetstream(), subject="fmcsa.evt.*.*.*")
            if isinstance(d.decoded, Decoded)
        ]
    finally:
        launcher.stop()
    held_back = [e for e in events if isinstance(e, SyncAttemptFailed) and e.request_id == hiccup.request_id]
    assert [e.kind for e in held_back] == [ErrorKind.SUSPECT_DROP]
    assert f"would drop {held:,} of the {held:,} violations held" in held_back[0].message
    assert isinstance(second, SourceSynced)
    assert second.attempts == 2
    assert (second.counts.fetched, second.counts.unchanged) == (held, held)
    assert not [e for e in events if isinstance(e, CarrierDataChanged)]


async def test_a_second_sync_of_an_unchanged_dataset_is_a_check_not_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    """The violations freshness check through the service (the launcher turns it off against the sandbox
    unless set): the second sync asks the dataset's metadata, finds nothing newer than what is held and
    ends `checked_unchanged`, with the held data's times and summary and no page read."""
    clean_env(monkeypatch)
    launcher = launch(tmp_path, ["sandbox", "violations"], FMCSA_VIOLATIONS_FRESHNESS_CHECK_S="300")
    try:
        nc = await bus_client(launcher)
        bus = Bus(nc.jetstream(), producer="test")
        outcomes = []
        for _ in range(2):
            request = request_for("violations", "2847193")
            await bus.publish(request)
            (outcome,) = (await wait_for_outcomes(nc, [request], wait_until, within_s=60))[request.request_id]
            assert isinstance(outcome, SourceSynced)
            outcomes.append(outcome)
        assert launcher.sandbox_url is not None
        async with httpx.AsyncClient(base_url=launcher.sandbox_url, timeout=10) as http:
            seen = (await http.get("/_sandbox/stats")).json()["requests_seen"]
    finally:
        launcher.stop()
    read, checked = outcomes
    assert not read.checked_unchanged
    assert read.counts.fetched > 0
    assert checked.checked_unchanged
    assert checked.counts.fetched == 0
    assert (checked.retrieved_at, checked.upstream_as_of) == (read.retrieved_at, read.upstream_as_of)
    assert checked.summary == read.summary
    pages = [path for path in seen if path.startswith("/resource/")]
    assert len(pages) == 1  # the first sync's one page; the second read none


async def test_violations_delta_cycles_share_one_query_and_each_request_ends_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    """Delta reads through the service (the launcher turns them off against the sandbox unless set):
    after a first full cycle, the syncs of 16 carriers published at once share one batched query, before
    and after a bump, and every request ends with exactly one outcome; the cycle after the bump's delta
    reconciles each carrier with a full read."""
    clean_env(monkeypatch)
    dots = [str(1000101 + n) for n in range(16)]
    launcher = launch(
        tmp_path,
        ["sandbox", "violations"],
        # a window a loaded machine cannot outrun between 16 deliveries; every request in flight at once
        FMCSA_VIOLATIONS_DELTA_WINDOW_S="1.0",
        FMCSA_VIOLATIONS_CONCURRENCY="32",
        FMCSA_VIOLATIONS_RATE_PER_S="50",
    )
    try:
        nc = await bus_client(launcher)
        bus = Bus(nc.jetstream(), producer="test")
        assert launcher.sandbox_url is not None
        async with httpx.AsyncClient(base_url=launcher.sandbox_url, timeout=10) as http:

            async def one_cycle() -> tuple[list[SourceSynced | SourceFailed], int]:
                (await http.post("/_sandbox/reset")).raise_for_status()
                requests = [request_for("violations", dot) for dot in dots]
                for request in requests:
                    await bus.publish(request)
                seen = await wait_for_outcomes(nc, requests, wait_until, within_s=90)
                answered = [seen[r.request_id] for r in requests]
                assert all(len(outcomes) == 1 for outcomes in answered), answered
                paths = (await http.get("/_sandbox/stats")).json()["requests_seen"]
                return [outcomes[0] for outcomes in answered], sum(p.startswith("/resource/") for p in paths)

            full, full_queries = await one_cycle()
            quiet, quiet_queries = await one_cycle()
            (await http.post("/_sandbox/bump")).raise_for_status()
            delta, delta_queries = await one_cycle()
            reconciled, reconcile_queries = await one_cycle()
    finally:
        launcher.stop()
    for outcome in (*full, *quiet, *delta, *reconciled):
        assert isinstance(outcome, SourceSynced), outcome
    assert (full_queries, quiet_queries, delta_queries, reconcile_queries) == (16, 1, 1, 16)
    assert all(o.counts.fetched == 0 for o in quiet if isinstance(o, SourceSynced))
    assert sum(o.counts.inserted for o in delta if isinstance(o, SourceSynced)) > 0


async def test_a_stopped_source_does_not_delay_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    clean_env(monkeypatch)
    launcher = launch(tmp_path, ["sandbox", "csa", "inspections"])  # violations is not running at all
    try:
        nc = await bus_client(launcher)
        requests = [
            request_for(s, str(dot)) for s in ("csa", "violations", "inspections") for dot in (11, 12, 13)
        ]
        await Bus(nc.jetstream(), producer="test").publish_many(requests)
        answered = [r for r in requests if r.source != "violations"]
        seen = await wait_for_outcomes(nc, answered, wait_until, within_s=30)
        assert all(isinstance(seen[r.request_id][0], SourceSynced) for r in answered)
        assert not any(r.request_id in seen for r in requests if r.source == "violations")
    finally:
        launcher.stop()


async def test_kill_between_publish_and_ack_still_gives_one_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    clean_env(monkeypatch)
    failpoints = tmp_path / "failpoints"
    launcher = launch(
        tmp_path,
        ["sandbox", "csa"],
        FMCSA_FAILPOINTS="source.after_publish",
        FMCSA_FAILPOINTS_DIR=str(failpoints),
    )
    try:
        nc = await bus_client(launcher)
        request = request_for("csa", "2847193")
        await Bus(nc.jetstream(), producer="test").publish(request)

        async def crashed() -> bool:
            return (failpoints / "source.after_publish.fired").exists() and not launcher.children["csa"].alive

        await wait_until(crashed, what="the csa service killed after publishing", within_s=30)
        assert launcher.supervise() == ["csa"]  # restart it, as `up` does

        csa_log = launcher.logs_dir / "csa.log"

        async def redelivered_and_acked() -> bool:
            info = await nc.jetstream().consumer_info("FMCSA_EVENTS", "source-csa")
            idle = info.num_ack_pending == 0 and info.num_pending == 0
            return idle and '"sync_outcome_republished"' in csa_log.read_text()

        await wait_until(redelivered_and_acked, what="the redelivery republished and acked", within_s=60)
        seen = await outcomes_by_request(nc)
    finally:
        launcher.stop()
    assert len(seen[request.request_id]) == 1, seen[request.request_id]


async def test_two_replicas_share_the_work_and_answer_each_request_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    clean_env(monkeypatch)
    launcher = launch(tmp_path, ["sandbox", "csa"], FMCSA_CSA_CONCURRENCY="4")
    second = Child(
        "csa-2",
        [sys.executable, "-m", "fmcsa_source_csa"],
        {
            **launcher._env,
            **bus_credential_env(launcher.data_dir, "source-csa"),
            **FAST,
            "FMCSA_CSA_CONCURRENCY": "4",
            "FMCSA_CSA_HTTP_PORT": str(free_port()),
        },
        log_path=launcher.logs_dir / "csa-2.log",
    ).start()
    try:
        nc = await bus_client(launcher)
        requests = [request_for("csa", str(1000 + n)) for n in range(200)]
        await Bus(nc.jetstream(), producer="test").publish_many(requests)
        seen = await wait_for_outcomes(nc, requests, wait_until, within_s=120)
    finally:
        second.stop()
        launcher.stop()
    counts = Counter(len(seen[r.request_id]) for r in requests)
    assert counts == {1: 200}
    logs = [(launcher.logs_dir / name).read_text() for name in ("csa.log", "csa-2.log")]
    finished = [log.count('"sync_finished"') for log in logs]
    assert all(n > 0 for n in finished), f"both replicas must do work: {finished}"
    print(f"replica split: {finished}")


async def test_sigterm_mid_batch_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    clean_env(monkeypatch)
    # every sandbox answer takes 300 ms, so a batch is mid-flight when SIGTERM arrives
    launcher = launch(tmp_path, ["sandbox", "csa"], FMCSA_SANDBOX_CSA_LATENCY_MS="300")
    try:
        nc = await bus_client(launcher)
        requests = [request_for("csa", str(3000 + n)) for n in range(60)]
        await Bus(nc.jetstream(), producer="test").publish_many(requests)

        async def some_answered() -> bool:
            return len(await outcomes_by_request(nc)) >= 5

        await wait_until(some_answered, what="the first outcomes", within_s=30)
        code = launcher.children["csa"].stop(grace_s=20)  # SIGTERM, then wait
        assert code == 0, "a graceful stop exits 0"
        assert launcher.supervise() == ["csa"]
        seen = await wait_for_outcomes(nc, requests, wait_until, within_s=90)
    finally:
        launcher.stop()
    assert Counter(len(seen[r.request_id]) for r in requests) == {1: 60}


async def test_a_hung_upstream_call_holds_only_its_own_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus_client: Any, wait_until: Any
) -> None:
    """Four slots, one request hung in the sandbox (DOT 99300001): the other requests still complete.

    The hang outlasts the test (the sandbox hangs 300 s, the client waits 120 s), so every other outcome
    must arrive while it is pending; a pull batch worked until its slowest message is done would stop
    after the hung request's batch mates. Then a SIGTERM with the hang in flight still exits 0.
    """
    clean_env(monkeypatch)
    launcher = launch(
        tmp_path,
        ["sandbox", "inspections"],
        FMCSA_INSPECTIONS_CONCURRENCY="4",
        FMCSA_INSPECTIONS_READ_TIMEOUT_S="120",
    )
    try:
        assert launcher.sandbox_url is not None
        nc = await bus_client(launcher)
        bus = Bus(nc.jetstream(), producer="test")
        hung = request_for("inspections", "99300001")
        await bus.publish(hung)

        async def hang_started() -> bool:
            async with httpx.AsyncClient(base_url=launcher.sandbox_url, timeout=10) as sandbox:
                stats = (await sandbox.get("/_sandbox/stats")).json()
            return bool(stats["sources"]["inspections"]["magic"] >= 1)

        await wait_until(hang_started, what="the hung call in the sandbox", within_s=30)
        others = [request_for("inspections", str(5000 + n)) for n in range(20)]
        await bus.publish_many(others)
        seen = await wait_for_outcomes(nc, others, wait_until, within_s=60)
        assert all(isinstance(seen[r.request_id][0], SourceSynced) for r in others)
        assert hung.request_id not in seen, "the hung request is still pending"
        code = launcher.children["inspections"].stop(grace_s=20)  # SIGTERM with the hang in flight
        assert code == 0, "a graceful stop exits 0 and hands the hung request back"
    finally:
        launcher.stop()
