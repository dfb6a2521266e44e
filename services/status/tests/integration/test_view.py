"""The read side (fmcsa_status_view.StatusView) on SQLite and PostgreSQL: what the gateway serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from status_support import at, attempt_failed, delivered, failed, registered, removed, request, synced, timed

from fmcsa_events.identifiers import InvalidDotNumber, SourceKey
from fmcsa_events.models import Trigger
from fmcsa_status.store import Applied, StatusStore
from fmcsa_status_view.models import SyncState
from fmcsa_status_view.query import InvalidCursor, StatusView
from fmcsa_status_view.syncstatus import sync_status_block

CSA, VIO = SourceKey.CSA, SourceKey.VIOLATIONS
DOTS = ["3", "9", "10", "25", "42", "77", "100", "250", "999", "1000", "2847193", "12345678"]
FAILING = {"10", "77", "999"}  # violations failing
NEVER = {"42", "1000"}  # registered, never requested
GONE = "250"  # removed


@pytest.fixture
async def view(database_url: str) -> AsyncIterator[StatusView]:
    items = []
    for n, dot in enumerate(DOTS):
        event, moment = registered(dot, 0, name=f"Carrier {dot}")
        items.append(timed(event, moment, f"reg-{dot}"))
        if dot in NEVER:
            continue
        csa = request(dot, CSA, 1 + n, trigger=Trigger.SCHEDULED)
        vio = request(dot, VIO, 1 + n, requested_by="ops@example.com")
        items += [timed(csa), timed(vio), timed(synced(csa, 2 + n, fetched=n))]
        if dot in FAILING:
            items.append(timed(failed(vio, 3 + n, message=f"503 for {dot}")))
        else:
            items.append(timed(synced(vio, 3 + n)))
    event, moment = removed(GONE, 50)
    items.append(timed(event, moment, "rm"))
    store = await StatusStore.connect(database_url)
    try:
        assert isinstance(await store.apply(delivered(items), believed=0, dead_letter=None), Applied)
    finally:
        await store.close()
    reader = StatusView(database_url)
    yield reader
    await reader.close()


async def test_one_company_with_its_sources_and_the_seeds_block(view: StatusView) -> None:
    status = await view.company_status("00999")  # canonical form is found
    assert status is not None
    assert (status.dot, status.name, status.active, status.failing, status.success) == (
        "999",
        "Carrier 999",
        True,
        True,
        False,
    )
    assert status.failing_sources == (VIO,)
    csa, vio = status.sources[CSA], status.sources[VIO]
    assert csa.state == SyncState.SUCCEEDED
    assert csa.last_counts is not None
    assert csa.last_summary == {"fetched": 8, "note": "run 10"}
    assert csa.upstream_as_of is not None
    assert csa.last_trigger == "scheduled"
    assert vio.state == SyncState.FAILED
    assert vio.consecutive_failures == 1
    assert vio.last_error is not None
    assert vio.last_requested_by == "ops@example.com"
    assert status.last_run == at(11)
    block = sync_status_block(status)
    assert block == {
        "lastRun": "2026-11-23T06:11:00.000Z",
        "success": False,
        "errors": [{"source": "violations", "error": "503 for 999", "timestamp": "2026-11-23T06:11:00.000Z"}],
        "csaScoresLastSync": "2026-11-23T06:10:00.000Z",
        "violationsLastSync": None,
        "inspectionsLastSync": None,
        "authorityLastSync": None,
    }
    assert await view.company_status("55") is None
    with pytest.raises(InvalidDotNumber):
        await view.company_status("12a")


async def test_the_last_scheduled_request_per_source_is_one_query_equal_to_the_log(view: StatusView) -> None:
    for dot in DOTS:
        expected = {}
        for source in (CSA, VIO, SourceKey.INSPECTIONS):
            times = [
                e.requested_at
                for trigger in (Trigger.SCHEDULED, Trigger.CATCH_UP)
                for e in (await view.sync_log(dot=dot, source=source, trigger=trigger, limit=1)).items
                if e.requested_at is not None
            ]
            if times:
                expected[source] = max(times)
        found = await view.last_scheduled_requests(dot, [CSA, VIO, SourceKey.INSPECTIONS])
        assert found == expected
    n = DOTS.index("9")
    assert await view.last_scheduled_requests("009", ["csa", VIO]) == {CSA: at(1 + n)}  # vio was manual
    assert await view.last_scheduled_requests("42", [CSA]) == {}  # never requested
    assert await view.last_scheduled_requests("9", []) == {}
    with pytest.raises(InvalidDotNumber):
        await view.last_scheduled_requests("9x", [CSA])


async def test_companies_are_listed_by_dot_number_in_keyset_pages(view: StatusView) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = await view.list_companies(limit=5, cursor=cursor)
        seen += [c.dot for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [d for d in DOTS if d != GONE]  # numeric order, the removed one left out
    everyone = await view.list_companies(active_only=False, limit=100)
    assert [c.dot for c in everyone.items] == DOTS
    with pytest.raises(InvalidCursor):
        await view.list_companies(cursor="not-a-cursor")
    with pytest.raises(ValueError, match="limit"):
        await view.list_companies(limit=0)


async def test_companies_filter_by_failing_never_synced_and_source(view: StatusView) -> None:
    async def dots(**filters: object) -> set[str]:
        return {c.dot for c in (await view.list_companies(limit=100, **filters)).items}  # type: ignore[arg-type]

    active = set(DOTS) - {GONE}
    assert await dots(failing=True) == FAILING
    assert await dots(failing=True, source="violations") == FAILING
    assert await dots(failing=True, source="csa") == set()
    assert await dots(failing=False) == active - FAILING
    assert await dots(never_synced=True) == NEVER
    assert await dots(never_synced=True, source="violations") == NEVER | FAILING
    assert await dots(never_synced=False, source="csa") == active - NEVER
    assert await dots(source="csa") == active - NEVER


async def test_the_sync_log_pages_newest_first_with_filters(view: StatusView) -> None:
    entries = []
    cursor = None
    while True:
        page = await view.sync_log(limit=7, cursor=cursor)
        entries += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(entries) == 2 * (len(DOTS) - len(NEVER))
    keys = [(e.requested_at, e.request_id) for e in entries]
    assert keys == sorted(keys, reverse=True)
    assert len({e.request_id for e in entries}) == len(entries)
    failures = (await view.sync_log(status="failed", limit=50)).items
    assert {e.dot for e in failures} == FAILING
    assert all(e.error_message and e.error_kind == "upstream_error" and e.counts is None for e in failures)
    mine = (await view.sync_log(dot="9", limit=50)).items
    assert {(e.source, e.status) for e in mine} == {(CSA, SyncState.SUCCEEDED), (VIO, SyncState.SUCCEEDED)}
    assert mine[0].counts is not None
    assert mine[0].duration_ms == 2000
    assert {e.trigger for e in (await view.sync_log(trigger="scheduled", limit=50)).items} == {"scheduled"}
    assert {e.source for e in (await view.sync_log(source="violations", limit=50)).items} == {VIO}
    window = (await view.sync_log(since=at(3), until=at(5), limit=50)).items
    assert {e.requested_at for e in window} == {at(3), at(4)}
    with pytest.raises(ValueError, match="time zone"):
        await view.sync_log(since=at(3).replace(tzinfo=None))
    with pytest.raises(ValueError, match="running"):
        await view.sync_log(status="running")


async def test_the_summary_counts_companies_requests_outcomes_and_days(view: StatusView) -> None:
    summary = await view.summary()
    asked = len(DOTS) - len(NEVER)
    assert (summary.companies, summary.failing, summary.never_synced) == (
        len(DOTS) - 1,
        len(FAILING),
        len(NEVER),
    )
    assert (summary.requests, summary.succeeded, summary.failed) == (2 * asked, 2 * asked - 3, 3)
    assert summary.last_sync_at == at(3 + len(DOTS) - 1)
    assert summary.per_source[VIO].failing == 3
    assert summary.per_source[CSA].companies == asked
    assert set(summary.per_source) == {CSA, VIO}
    assert [(d.day, d.source) for d in summary.outcomes_per_day] == [
        (date(2026, 11, 23), CSA),
        (date(2026, 11, 23), VIO),
    ]
    assert sum(d.failed for d in summary.outcomes_per_day) == 3
    assert summary.position == summary.events > 0
    assert await view.applied_position() == summary.position


async def test_a_store_the_projector_has_not_made_yet_reads_as_empty(tmp_path: object) -> None:
    view = StatusView(f"sqlite:///{tmp_path}/none.sqlite3")
    try:
        assert await view.applied_position() == 0
        assert await view.company_status("9") is None
        assert (await view.list_companies()).items == ()
        assert (await view.sync_log()).items == ()
        assert (await view.summary()).companies == 0
        assert sync_status_block(None)["lastRun"] is None
    finally:
        await view.close()


async def test_a_request_waiting_for_its_next_attempt_shows_attempt_n_of_m_until_its_outcome(
    database_url: str,
) -> None:
    event, moment = registered("2847193", 0, name="Acme")
    req = request("2847193", CSA, 1)
    waiting = [
        timed(event, moment, "reg"),
        timed(req),
        timed(attempt_failed(req, 2, attempt=2, retry_in_s=60)),
    ]
    store = await StatusStore.connect(database_url)
    reader = StatusView(database_url)
    try:
        assert isinstance(await store.apply(delivered(waiting), believed=0, dead_letter=None), Applied)
        await store.flush()
        status = await reader.company_status("2847193")
        assert status is not None
        csa = status.sources[CSA]
        assert csa.state == SyncState.REQUESTED
        assert csa.retry is not None
        assert (csa.retry.attempt, csa.retry.max_attempts, csa.retry.kind) == (2, 5, "upstream_error")
        assert csa.retry.next_attempt_at == at(2) + timedelta(seconds=60)
        (entry,) = (await reader.sync_log(dot="2847193")).items
        assert entry.retry == csa.retry
        assert entry.started_at is not None  # the first attempt's start, before any outcome

        outcome = synced(req, 4)
        applied = await store.apply(delivered([timed(outcome)], first_seq=4), believed=3, dead_letter=None)
        assert isinstance(applied, Applied)
        await store.flush()
        status = await reader.company_status("2847193")
        assert status is not None
        assert status.sources[CSA].retry is None  # answered: nothing waits any more
        (entry,) = (await reader.sync_log(dot="2847193")).items
        assert (entry.status, entry.retry, entry.duration_ms) == (SyncState.SUCCEEDED, None, 2000)
    finally:
        await reader.close()
        await store.close()
