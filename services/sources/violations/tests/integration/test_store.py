"""The violations store on SQLite and PostgreSQL: counts, idempotency, time weights, aging out, history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from violations_support import row as shared_row

import fmcsa_source_violations.store as store_module
from fmcsa_events.models import CarrierDataChanged, ChangeKind, ErrorKind
from fmcsa_runtime.database import create_engine
from fmcsa_source_kit.guard import DropGuard, SuspectDrop
from fmcsa_source_kit.outbox import changes_for, record_changes
from fmcsa_source_violations.domain.changes import detect_changes
from fmcsa_source_violations.domain.model import Violation, ViolationsFetch
from fmcsa_source_violations.domain.parse import assign_ordinals
from fmcsa_source_violations.store import HeldCounts, Store

DOT = "2847193"
T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
AS_OF = datetime(2025, 10, 21, 9, 12, 44, tzinfo=UTC)


def row(**overrides: Any) -> Violation:
    """The shared builder's row (violations_support), with this file's total severity weight of 6."""
    return shared_row(**{"total_severity_wght": "6", **overrides})


def fetch(rows: list[Violation], *, at: datetime = T0, as_of: datetime | None = AS_OF) -> ViolationsFetch:
    return ViolationsFetch(dot=DOT, retrieved_at=at, upstream_as_of=as_of, records=assign_ordinals(rows))


def window() -> list[Violation]:
    return [
        row(viol_code="39347E", oos_indicator="true", oos_weight="2", severity_weight="4", viol_unit="1"),
        row(),
        row(),  # an exact duplicate: ordinal 1
        row(
            unique_id="897734501",
            insp_date="14-MAR-25",
            basic_desc="Hours-of-Service Compliance",
            viol_unit="D",
        ),
        row(unique_id="871150296", insp_date="19-JUN-24", basic_desc="Unsafe Driving", viol_unit="D"),
    ]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_first_read_inserts_every_row(store: Store) -> None:
    counts = await store.upsert(fetch(window()), request_id=uuid4())
    assert (counts.fetched, counts.inserted, counts.updated, counts.unchanged) == (5, 5, 0, 0)
    held = await store.held(DOT)
    assert (held.current, held.aged_out) == (5, 0)


async def test_the_same_read_again_is_all_unchanged(store: Store) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    counts = await store.upsert(fetch(window(), at=T0 + timedelta(days=1)), request_id=uuid4())
    assert (counts.fetched, counts.inserted, counts.updated, counts.unchanged) == (5, 0, 0, 5)
    again = await store.upsert(fetch(list(reversed(window())), at=T0 + timedelta(days=2)), request_id=uuid4())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)


async def test_a_time_weight_step_is_refreshed_silently_and_counts_as_unchanged(store: Store) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    stepped = [
        Violation(**{**_fields(v), "time_weight": 2, "total_severity_wght": 1})
        for v in assign_ordinals(window())
    ]
    counts = await store.upsert(fetch(stepped, at=T0 + timedelta(days=31)), request_id=uuid4())
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 5)
    previous = await store.previous(DOT)
    assert previous is not None
    assert {v.time_weight for v in previous.records} == {2}
    assert {v.total_severity_wght for v in previous.records} == {1}
    assert await store.versions(DOT) == 0


async def test_changed_content_is_an_update_and_the_old_version_is_kept(store: Store) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    changed = window()
    changed[0] = row(
        viol_code="39347E", oos_indicator="false", oos_weight="0", severity_weight="4", viol_unit="1"
    )
    counts = await store.upsert(fetch(changed, at=T0 + timedelta(days=1)), request_id=uuid4())
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 4)
    assert await store.versions(DOT) == 1
    previous = await store.previous(DOT)
    assert previous is not None
    assert [v.oos for v in previous.records if v.viol_code == "39347E"] == [False]


async def test_rows_missing_from_a_complete_read_age_out_without_counting(store: Store) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    later = T0 + timedelta(days=30)
    fewer = [*window()[:3], row(unique_id="999000111", insp_date="01-OCT-25")]
    counts = await store.upsert(fetch(fewer, at=later), request_id=uuid4())
    assert (counts.fetched, counts.inserted, counts.updated, counts.unchanged) == (4, 1, 0, 3)
    held = await store.held(DOT)
    assert (held.current, held.aged_out) == (4, 2)
    previous = await store.previous(DOT)
    assert previous is not None
    assert {v.unique_id for v in previous.records} == {"905120418", "999000111"}
    assert previous.retrieved_at == later
    # aging out again is not a second event, and the same read again is unchanged
    again = await store.upsert(fetch(fewer, at=later + timedelta(days=1)), request_id=uuid4())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert (await store.held(DOT)).aged_out == 2


async def test_a_duplicate_that_disappears_ages_out_its_ordinal_1(store: Store) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    without_duplicate = [v for n, v in enumerate(window()) if n != 2]
    counts = await store.upsert(fetch(without_duplicate, at=T0 + timedelta(days=1)), request_id=uuid4())
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 4)
    assert (await store.held(DOT)).aged_out == 1


async def test_a_row_back_after_aging_out_counts_as_updated(store: Store) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    await store.upsert(fetch(window()[:4], at=T0 + timedelta(days=1)), request_id=uuid4())
    counts = await store.upsert(fetch(window(), at=T0 + timedelta(days=2)), request_id=uuid4())
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 4)
    assert (await store.held(DOT)).aged_out == 0


async def test_an_empty_read_is_held_back_once_then_a_second_one_ages_out_everything(
    store: Store, outbox_engine: AsyncEngine
) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    first, second = uuid4(), uuid4()
    with pytest.raises(SuspectDrop) as suspect:
        await store.upsert(fetch([], at=T0 + timedelta(days=1)), request_id=first)
    assert (suspect.value.held, suspect.value.dropped) == (5, 5)
    assert suspect.value.failure().kind is ErrorKind.SUSPECT_DROP
    assert suspect.value.failure().retryable
    held = await store.held(DOT)
    assert (held.current, held.aged_out) == (5, 0)  # kept what it had
    assert await changes_for(outbox_engine, first) == []  # and recorded no change
    previous = await store.previous(DOT)
    assert previous is not None
    assert previous.retrieved_at == T0
    # the next answer agrees: the drop is confirmed and executed, with its change facts
    counts = await store.upsert(fetch([], at=T0 + timedelta(days=1, minutes=1)), request_id=second)
    assert (counts.fetched, counts.inserted, counts.updated, counts.unchanged) == (0, 0, 0, 0)
    held = await store.held(DOT)
    assert (held.current, held.aged_out) == (0, 5)
    assert [c.kind for c in await changes_for(outbox_engine, second)] == [ChangeKind.VIOLATIONS_AGED_OUT]


async def test_a_suspect_answer_followed_by_a_normal_one_is_cleared(
    store: Store, outbox_engine: AsyncEngine
) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    with pytest.raises(SuspectDrop):
        await store.upsert(fetch([], at=T0 + timedelta(days=1)), request_id=uuid4())
    again = uuid4()
    counts = await store.upsert(fetch(window(), at=T0 + timedelta(days=1, minutes=1)), request_id=again)
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 5)
    assert await changes_for(outbox_engine, again) == []
    # the suspicion was cleared: the next empty answer is suspect afresh, not a confirmation
    with pytest.raises(SuspectDrop):
        await store.upsert(fetch([], at=T0 + timedelta(days=2)), request_id=uuid4())
    assert (await store.held(DOT)).current == 5


async def test_a_drop_under_the_share_or_of_few_rows_is_trusted(database_url: str) -> None:
    guarded_store = await Store.connect(database_url, guard=DropGuard(share=0.5, min_held=4))
    try:
        await guarded_store.upsert(fetch(window()), request_id=uuid4())
        # 2 of 5 gone: under half
        await guarded_store.upsert(fetch(window()[:3], at=T0 + timedelta(days=1)), request_id=uuid4())
        assert (await guarded_store.held(DOT)).current == 3
        # 2 of 3 gone: over half, but 3 held is under min_held 4
        await guarded_store.upsert(fetch(window()[:1], at=T0 + timedelta(days=2)), request_id=uuid4())
        assert (await guarded_store.held(DOT)).current == 1
    finally:
        await guarded_store.close()


async def test_previous_returns_what_was_held_with_times_as_aware_datetimes(store: Store) -> None:
    assert await store.previous(DOT) is None
    stored = fetch(window())
    await store.upsert(stored, request_id=uuid4())
    previous = await store.previous(DOT)
    assert previous is not None
    assert previous.retrieved_at == T0
    assert previous.upstream_as_of == AS_OF
    assert previous.upstream_as_of is not None
    assert previous.upstream_as_of.tzinfo is not None
    assert sorted(previous.records, key=lambda v: v.key) == sorted(stored.records, key=lambda v: v.key)


async def test_carriers_are_kept_apart(store: Store) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    other = ViolationsFetch(dot="1234567", retrieved_at=T0, upstream_as_of=None, records=())
    await store.upsert(other, request_id=uuid4())
    assert (await store.held(DOT)).current == 5
    assert (await store.held("1234567")).current == 0


async def test_concurrent_upserts_of_one_carrier_both_succeed(store: Store) -> None:
    results = await asyncio.gather(
        store.upsert(fetch(window()), request_id=uuid4()),
        store.upsert(fetch(window(), at=T0 + timedelta(seconds=1)), request_id=uuid4()),
    )
    assert sorted(c.inserted for c in results) == [0, 5]
    assert (await store.held(DOT)).current == 5


async def test_connecting_twice_keeps_the_rows(database_url: str) -> None:
    first = await Store.connect(database_url)
    await first.upsert(fetch(window()), request_id=uuid4())
    await first.close()
    second = await Store.connect(database_url)
    try:
        assert (await second.held(DOT)).current == 5
    finally:
        await second.close()


def _fields(violation: Violation) -> dict[str, Any]:
    return {name: getattr(violation, name) for name in Violation.__dataclass_fields__}


# --- change facts in the outbox -------------------------------------------------------------------

NEW_OOS: dict[str, Any] = {
    "unique_id": "912000777",
    "insp_date": "28-OCT-25",
    "viol_code": "3965A",
    "oos_indicator": "true",
    "oos_weight": "2",
    "basic_desc": "Unsafe Driving",
    "viol_unit": "D",
}


@pytest.fixture
async def outbox_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def test_the_outbox_holds_exactly_the_changes_of_the_new_read(
    store: Store, outbox_engine: AsyncEngine
) -> None:
    first, second = uuid4(), uuid4()
    old = fetch(window())
    new = fetch([*window()[:4], row(**NEW_OOS)], at=T0 + timedelta(days=30))
    await store.upsert(old, request_id=first)
    await store.upsert(new, request_id=second)
    assert await changes_for(outbox_engine, first) == []  # a baseline
    recorded = await changes_for(outbox_engine, second)
    assert recorded == detect_changes(old, new, request_id=second, observed_at=new.retrieved_at)
    assert [(c.kind, c.subject, c.dot) for c in recorded] == [
        (ChangeKind.VIOLATIONS_ADDED, "violations", DOT),
        (ChangeKind.VIOLATIONS_AGED_OUT, "violations", DOT),
    ]
    added, aged = recorded
    assert added.before == {
        "count": 5,
        "oos_count": 1,
        "inspections": 3,
        "per_basic": {"hos_compliance": 1, "unsafe_driving": 1, "vehicle_maintenance": 3},
        "latest_inspection_date": "2025-09-02",
    }
    assert added.after == {
        "count": 1,
        "oos_count": 1,
        "inspections": 1,
        "per_basic": {"unsafe_driving": 1},
        "latest_inspection_date": "2025-10-28",
    }
    assert aged.after == {
        "count": 1,
        "oos_count": 0,
        "inspections": 1,
        "per_basic": {"unsafe_driving": 1},
        "latest_inspection_date": "2024-06-19",
    }
    assert added.upstream_as_of == AS_OF


async def test_a_re_upsert_or_a_redelivered_request_records_nothing_new(
    store: Store, outbox_engine: AsyncEngine
) -> None:
    second, third = uuid4(), uuid4()
    await store.upsert(fetch(window()), request_id=uuid4())
    new = fetch([*window(), row(**NEW_OOS)], at=T0 + timedelta(days=30))
    await store.upsert(new, request_id=second)
    [added] = await changes_for(outbox_engine, second)
    again = await store.upsert(new, request_id=second)  # redelivered after a crash before the outcome
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)
    assert await changes_for(outbox_engine, second) == [added]
    await store.upsert(replace(new, retrieved_at=T0 + timedelta(days=31)), request_id=third)
    assert await changes_for(outbox_engine, third) == []


async def test_a_time_weight_refresh_records_no_change(store: Store, outbox_engine: AsyncEngine) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    request = uuid4()
    stepped = [Violation(**{**_fields(v), "time_weight": 1}) for v in assign_ordinals(window())]
    await store.upsert(fetch(stepped, at=T0 + timedelta(days=31)), request_id=request)
    assert await changes_for(outbox_engine, request) == []


async def test_a_clean_carrier_first_read_is_the_baseline_and_its_first_violation_is_added(
    store: Store, outbox_engine: AsyncEngine
) -> None:
    first, second = uuid4(), uuid4()
    await store.upsert(fetch([]), request_id=first)
    await store.upsert(fetch([row(**NEW_OOS)], at=T0 + timedelta(days=30)), request_id=second)
    assert await changes_for(outbox_engine, first) == []
    [added] = await changes_for(outbox_engine, second)
    assert added.kind is ChangeKind.VIOLATIONS_ADDED
    assert isinstance(added.before, dict)
    assert added.before["count"] == 0


async def test_a_failure_after_recording_the_changes_rolls_back_rows_and_changes_together(
    store: Store, outbox_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    request = uuid4()
    new = fetch([*window(), row(**NEW_OOS)], at=T0 + timedelta(days=30))

    async def record_then_crash(connection: AsyncConnection, changes: Sequence[CarrierDataChanged]) -> None:
        await record_changes(connection, changes)
        raise RuntimeError("crashed after recording, before the commit")

    monkeypatch.setattr(store_module, "record_changes", record_then_crash)
    with pytest.raises(RuntimeError, match="before the commit"):
        await store.upsert(new, request_id=request)
    assert await changes_for(outbox_engine, request) == []
    assert (await store.held(DOT)).current == 5

    monkeypatch.undo()
    await store.upsert(new, request_id=request)  # the redelivery still finds the change
    assert [c.kind for c in await changes_for(outbox_engine, request)] == [ChangeKind.VIOLATIONS_ADDED]


async def test_a_failing_row_write_records_no_change(
    store: Store, outbox_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.upsert(fetch(window()), request_id=uuid4())
    request = uuid4()

    async def failing_held(*args: object, **kwargs: object) -> HeldCounts:
        raise RuntimeError("the row write failed")

    monkeypatch.setattr(store, "_held", failing_held)
    with pytest.raises(RuntimeError, match="row write failed"):
        await store.upsert(fetch([*window(), row(**NEW_OOS)], at=T0 + timedelta(days=30)), request_id=request)
    assert await changes_for(outbox_engine, request) == []


async def test_a_delta_read_moves_the_mark_adds_rows_and_ages_nothing_out(
    store: Store, database_url: str
) -> None:
    assert await store.mark(DOT) is None
    water = datetime(2025, 10, 21, 9, 0, 0, 123000, tzinfo=UTC)
    await store.upsert(replace(fetch(window()), high_water=water), request_id=uuid4())
    full = await store.mark(DOT)
    assert full is not None
    assert (full.high_water, full.full_read_at, full.full_read_as_of, full.seen_as_of) == (
        water,
        T0,
        AS_OF,
        AS_OF,
    )

    later, newer = T0 + timedelta(days=1), AS_OF + timedelta(days=30)
    new = row(unique_id="912000777", insp_date="28-OCT-25", viol_code="3965A", oos_indicator="true")
    delta = ViolationsFetch(
        dot=DOT,
        retrieved_at=later,
        upstream_as_of=newer,
        records=assign_ordinals([new]),
        high_water=water + timedelta(days=30),
        delta=True,
    )
    request = uuid4()
    counts = await store.upsert(delta, request_id=request)
    assert (counts.fetched, counts.inserted, counts.updated, counts.unchanged) == (1, 1, 0, 0)
    assert await store.held(DOT) == HeldCounts(current=len(window()) + 1, aged_out=0)
    engine = create_engine(database_url)
    try:
        kinds = [change.kind for change in await changes_for(engine, request)]
    finally:
        await engine.dispose()
    assert kinds == [ChangeKind.VIOLATIONS_ADDED]
    moved = await store.mark(DOT)
    assert moved is not None
    # the mark moved, the full read did not; the newer publication seen calls for a reconciliation
    assert (moved.high_water, moved.full_read_at, moved.seen_as_of) == (water + timedelta(days=30), T0, newer)

    # a delta that brings nothing leaves the mark where it is
    await store.upsert(replace(delta, records=(), high_water=None, retrieved_at=later), request_id=uuid4())
    again = await store.mark(DOT)
    assert again is not None
    assert again.high_water == water + timedelta(days=30)
