"""Delta reads against the sandbox, on both databases (issue 24 item 2): the syncs of many carriers in
flight at once share one batched `dot_number IN (...) AND :updated_at > mark` query, each request ends
with its own outcome, and after a bump, a delta cycle and a reconciliation the store holds exactly what a
full refetch reads (rows that left the window aged out by the reconciliation only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus
from uuid import uuid4

import httpx
import pytest

from fmcsa_events.models import ChangeKind, ErrorKind, SyncRequested, Trigger
from fmcsa_runtime.database import create_engine
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.outbox import changes_for
from fmcsa_source_kit.runner import SourceAdapter
from fmcsa_source_kit.settle import Stored
from fmcsa_source_violations.app import build_adapter
from fmcsa_source_violations.domain.model import ViolationsFetch
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.store import Store
from fmcsa_source_violations.upstream import SocrataClient

DOTS = [str(1000001 + n) for n in range(24)]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[SocrataClient]:
    made = SocrataClient.from_settings(settings(sandbox_url))
    try:
        yield made
    finally:
        await made.aclose()


def settings(sandbox_url: str) -> Settings:
    # no freshness check (the sandbox's bump is read at once); a window wide enough for every request of
    # a cycle to join, which a loaded test machine can stretch
    return Settings.model_validate(
        {"base_url": sandbox_url, "freshness_check_s": 0, "delta_window_s": 0.5, "rate_per_s": 100}
    )


async def admin(sandbox_url: str, method: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        answer = await http.request(method, path)
        answer.raise_for_status()
        return answer.json()


@dataclass(frozen=True, slots=True)
class Cycle:
    outcomes: dict[str, Stored]
    """Each carrier's one outcome."""
    queries: list[str]
    """The dataset reads the sandbox served meanwhile, URL-decoded."""
    kinds: set[ChangeKind]
    """The kinds of the change facts the cycle recorded."""


async def cycle(adapter: SourceAdapter[Any], sandbox_url: str, database_url: str) -> Cycle:
    """Every carrier's sync at once, as the runner runs the requests in flight: each awaits its own
    fetch and store and ends in one Stored.
    """
    await admin(sandbox_url, "POST", "/_sandbox/reset")
    now = datetime.now(UTC)

    async def sync(dot: str) -> tuple[str, SyncRequested, Stored | Failure]:
        request = SyncRequested(
            request_id=uuid4(),
            dot=dot,
            source="violations",
            trigger=Trigger.MANUAL,
            requested_by="test",
            requested_at=now,
            deadline=now + timedelta(minutes=5),
        )
        fetched = await adapter.fetch(dot)
        assert not isinstance(fetched, Failure), fetched
        return dot, request, await adapter.store(fetched, request)

    results = await asyncio.gather(*(sync(dot) for dot in DOTS))
    outcomes: dict[str, Stored] = {}
    for dot, _, stored in results:
        assert isinstance(stored, Stored), stored
        outcomes[dot] = stored
    seen = (await admin(sandbox_url, "GET", "/_sandbox/stats"))["requests_seen"]
    engine = create_engine(database_url)
    try:
        kinds = {
            change.kind
            for _, request, _ in results
            for change in await changes_for(engine, request.request_id)
        }
    finally:
        await engine.dispose()
    return Cycle(outcomes, [unquote_plus(path) for path in seen if "/resource/" in path], kinds)


async def test_a_delta_cycle_is_one_batched_query_and_a_reconciliation_ends_equal_to_a_full_read(
    sandbox_url: str, client: SocrataClient, store: Store, database_url: str
) -> None:
    adapter = build_adapter(settings(sandbox_url), client, store)

    first = await cycle(adapter, sandbox_url, database_url)
    assert len(first.queries) == len(DOTS)  # never read: each carrier in full (one page each)
    assert all(o.counts.inserted == o.counts.fetched for o in first.outcomes.values())

    quiet = await cycle(adapter, sandbox_url, database_url)
    assert len(quiet.queries) == 1, quiet.queries  # one batched query for every carrier; nothing changed
    assert "dot_number IN (" in quiet.queries[0]
    assert ":updated_at > '" in quiet.queries[0]
    assert all(o.counts.fetched == 0 for o in quiet.outcomes.values())
    assert {d: o.summary for d, o in quiet.outcomes.items()} == {
        d: o.summary for d, o in first.outcomes.items()
    }
    assert quiet.kinds == set()

    await admin(sandbox_url, "POST", "/_sandbox/bump")
    delta = await cycle(adapter, sandbox_url, database_url)
    assert len(delta.queries) == 1, delta.queries  # the monthly run rewrote every row: all in one query
    assert sum(o.counts.inserted for o in delta.outcomes.values()) > 0
    assert delta.kinds == {ChangeKind.VIOLATIONS_ADDED}
    for dot in DOTS:
        assert (await store.held(dot)).aged_out == 0, dot  # a delta never ages out

    reconciled = await cycle(adapter, sandbox_url, database_url)
    assert len(reconciled.queries) == len(DOTS)  # a new publication seen: each carrier read in full once
    assert all(o.counts.inserted == 0 for o in reconciled.outcomes.values())
    assert reconciled.kinds == {ChangeKind.VIOLATIONS_AGED_OUT}

    differing = aged = 0
    for dot in DOTS:
        full = await client.fetch(dot)
        assert isinstance(full, ViolationsFetch)
        window = await store.previous(dot)
        assert window is not None
        stored = {(v.key, v.content_hash, v.time_weight, v.total_severity_wght) for v in window.records}
        fresh = {(v.key, v.content_hash, v.time_weight, v.total_severity_wght) for v in full.records}
        differing += len(stored ^ fresh)
        aged += (await store.held(dot)).aged_out
    assert differing == 0
    assert aged > 0
    print(
        f"\nqueries for {len(DOTS)} carriers: full cycle {len(first.queries)}, delta cycles "
        f"{len(quiet.queries)} and {len(delta.queries)}, reconciliation {len(reconciled.queries)}; "
        f"aged out by the reconciliation: {aged}; differing rows after it: {differing}"
    )


async def test_a_failed_batch_is_each_waiting_requests_own_retryable_failure(
    sandbox_url: str, store: Store, database_url: str
) -> None:
    quick = settings(sandbox_url).model_copy(update={"inline_retries": 0})
    client = SocrataClient.from_settings(quick)
    try:
        adapter = build_adapter(quick, client, store)
        await cycle(adapter, sandbox_url, database_url)  # every carrier read in full once
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
            (await http.put("/_sandbox/faults", json={"violations_p_5xx": 1.0})).raise_for_status()
            (await http.post("/_sandbox/reset")).raise_for_status()
            failures = await asyncio.gather(*(adapter.fetch(dot) for dot in DOTS))
            seen = (await http.get("/_sandbox/stats")).json()["requests_seen"]
            (await http.put("/_sandbox/faults", json={"violations_p_5xx": 0.0})).raise_for_status()
    finally:
        await client.aclose()
    assert [path for path in seen if "/resource/" in path] == [seen[0]]  # one batched query, one answer
    for failure in failures:
        assert isinstance(failure, Failure)
        assert (failure.kind, failure.retryable) == (ErrorKind.UPSTREAM_ERROR, True)
