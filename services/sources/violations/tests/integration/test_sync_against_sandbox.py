"""Client and store together against the sandbox, on both databases: a first read, the same read again,
and the next monthly run after `POST /_sandbox/bump` (rows age out, weights step down, new rows arrive)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from fmcsa_events.models import ChangeKind, Counts, SyncRequested, Trigger
from fmcsa_runtime.database import create_engine
from fmcsa_source_kit.outbox import changes_for
from fmcsa_source_kit.runner import ClientStoreAdapter, FreshnessCheck, Unchanged
from fmcsa_source_kit.settle import Stored
from fmcsa_source_violations.domain.model import ViolationsFetch
from fmcsa_source_violations.domain.summary import summarize
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.store import Store
from fmcsa_source_violations.upstream import SocrataClient

HEALTHY = "2847193"
ROWS_2500 = "99500001"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[SocrataClient]:
    made = SocrataClient.from_settings(Settings.model_validate({"base_url": sandbox_url}))
    try:
        yield made
    finally:
        await made.aclose()


async def read(client: SocrataClient, dot: str) -> ViolationsFetch:
    result = await client.fetch(dot)
    assert isinstance(result, ViolationsFetch), result
    return result


async def bump(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        (await http.post("/_sandbox/bump")).raise_for_status()


@pytest.mark.parametrize("dot", [HEALTHY, ROWS_2500])
async def test_counts_follow_the_monthly_run(
    sandbox_url: str, client: SocrataClient, store: Store, dot: str, database_url: str
) -> None:
    first = await read(client, dot)
    counts = await store.upsert(first, request_id=uuid4())
    assert (counts.fetched, counts.inserted, counts.updated, counts.unchanged) == (
        len(first.records),
    ) * 2 + (0, 0)

    again = await store.upsert(await read(client, dot), request_id=uuid4())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(first.records))

    await bump(sandbox_url)
    second = await read(client, dot)
    assert second.upstream_as_of is not None
    assert first.upstream_as_of is not None
    assert second.upstream_as_of > first.upstream_as_of

    old = {v.key: v for v in first.records}
    new = {v.key: v for v in second.records}
    expected_inserted = len(new.keys() - old.keys())
    expected_unchanged = sum(1 for k in new.keys() & old.keys() if new[k].content_hash == old[k].content_hash)
    expected_updated = len(new.keys() & old.keys()) - expected_unchanged
    expected_aged = len(old.keys() - new.keys())
    weights_stepped = sum(
        1
        for k in new.keys() & old.keys()
        if new[k].content_hash == old[k].content_hash and new[k].time_weight != old[k].time_weight
    )

    request = uuid4()
    bumped = await store.upsert(second, request_id=request)
    assert (bumped.fetched, bumped.inserted, bumped.updated, bumped.unchanged) == (
        len(second.records),
        expected_inserted,
        expected_updated,
        expected_unchanged,
    )
    held = await store.held(dot)
    assert (held.current, held.aged_out) == (len(second.records), expected_aged)
    previous = await store.previous(dot)
    assert previous is not None
    assert sorted(v.time_weight for v in previous.records) == sorted(v.time_weight for v in second.records)
    engine = create_engine(database_url)
    try:
        recorded = {change.kind: change.after for change in await changes_for(engine, request)}
    finally:
        await engine.dispose()
    expected_changes = {
        kind: count
        for kind, count in (
            (ChangeKind.VIOLATIONS_ADDED, expected_inserted),
            (ChangeKind.VIOLATIONS_AGED_OUT, expected_aged),
        )
        if count
    }
    assert {kind: after["count"] for kind, after in recorded.items() if isinstance(after, dict)} == (
        expected_changes
    )
    if dot == HEALTHY:
        # a month passed: the sandbox moves this carrier's window (it is not a frozen magic DOT)
        assert expected_aged + expected_inserted + weights_stepped > 0
    print(
        f"\nbump {dot}: fetched={bumped.fetched} inserted={bumped.inserted} updated={bumped.updated} "
        f"unchanged={bumped.unchanged} (time_weight stepped silently: {weights_stepped}) "
        f"aged_out={expected_aged}"
    )


def _freshness_settings(sandbox_url: str, **extra: object) -> Settings:
    # re-asked at every sync, so that a bump is seen at once
    return Settings.model_validate({"base_url": sandbox_url, "freshness_check_s": 0.001, **extra})


async def test_an_unchanged_dataset_is_checked_not_read_and_a_bump_is_read(
    sandbox_url: str, store: Store
) -> None:
    client = SocrataClient.from_settings(_freshness_settings(sandbox_url))
    adapter = ClientStoreAdapter(
        client, store, summarize, freshness=FreshnessCheck(client.published_at, store.previous)
    )
    try:
        first = await adapter.fetch(HEALTHY)
        assert isinstance(first, ViolationsFetch)  # nothing held yet: read
        stored = await adapter.store(first, request_for(HEALTHY))
        assert isinstance(stored, Stored)
        assert not stored.checked_unchanged

        before = await sandbox_requests(sandbox_url)
        again = await adapter.fetch(HEALTHY)
        assert isinstance(again, Unchanged)
        checked = await adapter.store(again, request_for(HEALTHY))
        assert isinstance(checked, Stored)
        assert checked.checked_unchanged
        assert checked.counts == Counts()
        assert (checked.retrieved_at, checked.upstream_as_of) == (first.retrieved_at, first.upstream_as_of)
        assert checked.summary == stored.summary  # the data held, described as the fetch described it
        asked = await sandbox_requests(sandbox_url) - before
        assert asked == Counter({"/api/views/8mt8-2mdr.json": 1})  # one metadata call, no page

        await bump(sandbox_url)
        moved = await adapter.fetch(HEALTHY)
        assert isinstance(moved, ViolationsFetch)  # the dataset was republished: read again
        assert moved.upstream_as_of is not None
        assert first.upstream_as_of is not None
        assert moved.upstream_as_of > first.upstream_as_of
    finally:
        await client.aclose()


async def test_the_metadata_is_asked_once_per_freshness_period_whatever_the_carriers(
    sandbox_url: str,
) -> None:
    client = SocrataClient.from_settings(_freshness_settings(sandbox_url, freshness_check_s=300))
    try:
        before = await sandbox_requests(sandbox_url)
        answers = {await client.published_at() for _ in range(20)}
        assert len(answers) == 1
        (published,) = answers
        assert published is not None
        assert published.tzinfo is not None
        asked = await sandbox_requests(sandbox_url) - before
        assert asked == Counter({"/api/views/8mt8-2mdr.json": 1})
    finally:
        await client.aclose()


async def test_a_metadata_call_that_fails_lets_the_carrier_be_read(sandbox_url: str) -> None:
    client = SocrataClient.from_settings(_freshness_settings(sandbox_url, dataset="zzzz-zzzz"))
    try:
        assert await client.published_at() is None  # 404 for another dataset: cannot tell, so read
    finally:
        await client.aclose()


def request_for(dot: str) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source="violations",
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(minutes=5),
    )


async def sandbox_requests(sandbox_url: str) -> Counter[str]:
    """Every request path the sandbox has seen (the last 1000), counted."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        answer = await http.get("/_sandbox/stats")
        answer.raise_for_status()
    return Counter(seen.split("?", 1)[0] for seen in answer.json()["requests_seen"])
