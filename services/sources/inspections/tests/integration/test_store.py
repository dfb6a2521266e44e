from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import fmcsa_source_inspections.store as store_module
from fmcsa_events.models import CarrierDataChanged, ChangeKind, Counts
from fmcsa_runtime.database import create_engine
from fmcsa_source_inspections.domain.changes import detect_changes
from fmcsa_source_inspections.domain.content import content_hash
from fmcsa_source_inspections.domain.parse import parse_response
from fmcsa_source_inspections.domain.records import InspectionsFetch
from fmcsa_source_inspections.store import Store
from fmcsa_source_kit.outbox import changes_for, record_changes

T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
DOT = "2847193"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


def body_of(examples_dir: Path, name: str = "saferwebapi-snapshot.json") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((examples_dir / name).read_bytes())
    return loaded


def fetch_of(body: dict[str, Any], at: datetime, dot: str = "2847193") -> InspectionsFetch:
    result = parse_response(200, {}, json.dumps(body).encode(), dot, at)
    assert isinstance(result, InspectionsFetch), result
    return result


async def test_first_fetch_is_inserted_and_the_same_again_is_unchanged(
    store: Store, examples_dir: Path
) -> None:
    fetch = fetch_of(body_of(examples_dir), T0)
    assert await store.previous("2847193") is None
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=1, inserted=1)
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=1, unchanged=1)
    assert await store.upsert(
        fetch_of(body_of(examples_dir), T0 + timedelta(days=1)), request_id=uuid4()
    ) == Counts(fetched=1, unchanged=1)
    assert await store.previous("2847193") == fetch.snapshot
    [version] = await store.versions("2847193")
    assert version.content_hash == content_hash(fetch.snapshot)
    assert version.latest_update == date(2025, 11, 3)
    assert version.first_seen_at == T0
    assert version.last_seen_at == T0 + timedelta(days=1)


async def test_a_changed_snapshot_is_updated_and_the_old_version_is_kept(
    store: Store, examples_dir: Path
) -> None:
    before = fetch_of(body_of(examples_dir), T0)
    changed_body = body_of(examples_dir)
    changed_body["us_inspections"]["driver"]["inspections"] = 10
    changed_body["latest_update"] = "11/10/2025"
    after = fetch_of(changed_body, T0 + timedelta(days=7))
    await store.upsert(before, request_id=uuid4())
    assert await store.previous("2847193") == before.snapshot
    assert await store.upsert(after, request_id=uuid4()) == Counts(fetched=1, updated=1)
    assert await store.upsert(after, request_id=uuid4()) == Counts(fetched=1, unchanged=1)
    assert await store.previous("2847193") == after.snapshot
    versions = await store.versions("2847193")
    assert [v.snapshot for v in versions] == [before.snapshot, after.snapshot]
    assert [v.latest_update for v in versions] == [date(2025, 11, 3), date(2025, 11, 10)]


async def test_a_respelled_answer_with_the_same_content_is_unchanged(
    store: Store, examples_dir: Path
) -> None:
    body = body_of(examples_dir)
    respelled = {k: v for k, v in body.items() if k not in ("us_inspections", "url")}
    respelled["united_states_inspections"] = {
        group: {key: str(value) for key, value in figures.items()}
        for group, figures in body["us_inspections"].items()
    }
    await store.upsert(fetch_of(body, T0), request_id=uuid4())
    assert await store.upsert(fetch_of(respelled, T0 + timedelta(hours=1)), request_id=uuid4()) == Counts(
        fetched=1, unchanged=1
    )


async def test_an_older_fetch_never_replaces_a_newer_one(store: Store, examples_dir: Path) -> None:
    newer_body = body_of(examples_dir)
    newer_body["operating_status"] = "OUT-OF-SERVICE"
    newer = fetch_of(newer_body, T0 + timedelta(hours=2))
    older = fetch_of(body_of(examples_dir), T0)
    await store.upsert(newer, request_id=uuid4())
    assert await store.upsert(older, request_id=uuid4()) == Counts(fetched=1, unchanged=1)
    assert await store.previous("2847193") == newer.snapshot
    assert len(await store.versions("2847193")) == 2  # the older content is still kept as evidence


async def test_carriers_are_kept_apart(store: Store, examples_dir: Path) -> None:
    one = fetch_of(body_of(examples_dir), T0)
    other = fetch_of(body_of(examples_dir, "saferwebapi-snapshot-alt.json"), T0, dot="3310562")
    assert await store.upsert(one, request_id=uuid4()) == Counts(fetched=1, inserted=1)
    assert await store.upsert(other, request_id=uuid4()) == Counts(fetched=1, inserted=1)
    assert await store.previous("3310562") == other.snapshot
    assert await store.previous("02847193") == one.snapshot  # any spelling of the DOT


async def test_a_name_only_snapshot_is_stored(store: Store) -> None:
    fetch = fetch_of({"usdot": "123", "legal_name": "NEW LLC"}, T0, dot="123")
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=1, inserted=1)
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=1, unchanged=1)
    [version] = await store.versions("123")
    assert version.latest_update is None


async def test_concurrent_first_writes_of_one_carrier_insert_once(store: Store, examples_dir: Path) -> None:
    bodies = []
    for n in range(6):
        body = body_of(examples_dir)
        body["drivers"] = 7 + n % 2  # two distinct contents
        bodies.append(body)
    results = await asyncio.gather(
        *(
            store.upsert(fetch_of(b, T0 + timedelta(seconds=i)), request_id=uuid4())
            for i, b in enumerate(bodies)
        )
    )
    assert sum(c.inserted for c in results) == 1
    assert sum(c.fetched for c in results) == 6
    assert len(await store.versions("2847193")) == 2


async def test_connect_twice_is_harmless(database_url: str, examples_dir: Path) -> None:
    first = await Store.connect(database_url)
    await first.upsert(fetch_of(body_of(examples_dir), T0), request_id=uuid4())
    await first.close()
    again = await Store.connect(database_url)
    try:
        assert await again.upsert(fetch_of(body_of(examples_dir), T0), request_id=uuid4()) == Counts(
            fetched=1, unchanged=1
        )
    finally:
        await again.close()


# --- change facts in the outbox -------------------------------------------------------------------


@pytest.fixture
async def outbox_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def bumped(examples_dir: Path) -> dict[str, Any]:
    """The example a week later: rated Conditional, out of service, one more US crash, 2 of 7 vehicles OOS."""
    body = body_of(examples_dir)
    body.update(
        operating_status="OUT-OF-SERVICE",
        out_of_service_date="11/07/2025",
        safety_rating="CONDITIONAL",
        safety_rating_date="11/05/2025",
        united_states_crashes={"fatal": 0, "injury": 1, "tow": 1, "total": 2},
        latest_update="11/10/2025",
    )
    body["us_inspections"]["vehicle"].update(inspections=7, out_of_service=2, out_of_service_percent="28.57%")
    return body


async def test_the_outbox_holds_exactly_the_changes_of_the_new_snapshot(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    first, second = uuid4(), uuid4()
    old, new = fetch_of(body_of(examples_dir), T0), fetch_of(bumped(examples_dir), T0 + timedelta(days=7))
    await store.upsert(old, request_id=first)
    await store.upsert(new, request_id=second)
    assert await changes_for(outbox_engine, first) == []  # a baseline
    recorded = await changes_for(outbox_engine, second)
    assert recorded == detect_changes(old, new, request_id=second, observed_at=new.retrieved_at)
    assert [(c.kind, c.subject, c.before, c.after) for c in recorded] == [
        (
            ChangeKind.OPERATING_STATUS_CHANGED,
            "operating_status",
            {"status": "ACTIVE", "out_of_service_date": None},
            {"status": "OUT-OF-SERVICE", "out_of_service_date": "2025-11-07"},
        ),
        (
            ChangeKind.SAFETY_RATING_CHANGED,
            "safety_rating",
            {"rating": "SATISFACTORY", "rating_date": "2019-08-14"},
            {"rating": "CONDITIONAL", "rating_date": "2025-11-05"},
        ),
        (
            ChangeKind.CRASHES_ADDED,
            "us",
            {"fatal": 0, "injury": 0, "tow": 1, "total": 1},
            {"fatal": 0, "injury": 1, "tow": 1, "total": 2},
        ),
        (
            ChangeKind.OOS_RATE_CHANGED,
            "us_vehicle",
            {"percent": "16.67", "inspections": 6, "out_of_service": 1, "national_average": "20.72"},
            {"percent": "28.57", "inspections": 7, "out_of_service": 2, "national_average": "20.72"},
        ),
    ]
    assert {c.upstream_as_of for c in recorded} == {datetime(2025, 11, 10, tzinfo=UTC)}


async def test_a_re_upsert_a_redelivery_or_an_older_fetch_records_nothing_new(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    second, third, fourth = uuid4(), uuid4(), uuid4()
    new = fetch_of(bumped(examples_dir), T0 + timedelta(days=7))
    await store.upsert(fetch_of(body_of(examples_dir), T0), request_id=uuid4())
    await store.upsert(new, request_id=second)
    recorded = await changes_for(outbox_engine, second)
    assert await store.upsert(new, request_id=second) == Counts(fetched=1, unchanged=1)  # redelivered
    assert await changes_for(outbox_engine, second) == recorded
    await store.upsert(fetch_of(bumped(examples_dir), T0 + timedelta(days=8)), request_id=third)
    assert await changes_for(outbox_engine, third) == []
    await store.upsert(fetch_of(body_of(examples_dir), T0 + timedelta(days=1)), request_id=fourth)  # late
    assert await changes_for(outbox_engine, fourth) == []


async def test_the_oos_threshold_of_the_store_is_the_configured_one(
    database_url: str, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    request = uuid4()
    body = body_of(examples_dir)
    body["us_inspections"]["vehicle"]["out_of_service_percent"] = "18.67%"  # two points up
    sensitive = await Store.connect(database_url, oos_rate_change_points=2.0)
    try:
        await sensitive.upsert(fetch_of(body_of(examples_dir), T0), request_id=uuid4())
        await sensitive.upsert(fetch_of(body, T0 + timedelta(days=1)), request_id=request)
    finally:
        await sensitive.close()
    assert [(c.kind, c.subject) for c in await changes_for(outbox_engine, request)] == [
        (ChangeKind.OOS_RATE_CHANGED, "us_vehicle")
    ]


async def test_a_failure_after_recording_the_changes_rolls_back_rows_and_changes_together(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fetch_of(body_of(examples_dir), T0)
    await store.upsert(old, request_id=uuid4())
    request = uuid4()
    new = fetch_of(bumped(examples_dir), T0 + timedelta(days=7))

    async def record_then_crash(connection: AsyncConnection, changes: Sequence[CarrierDataChanged]) -> None:
        await record_changes(connection, changes)
        raise RuntimeError("crashed after recording, before the commit")

    monkeypatch.setattr(store_module, "record_changes", record_then_crash)
    with pytest.raises(RuntimeError, match="before the commit"):
        await store.upsert(new, request_id=request)
    assert await changes_for(outbox_engine, request) == []
    assert await store.previous(DOT) == old.snapshot
    assert len(await store.versions(DOT)) == 1

    monkeypatch.undo()
    await store.upsert(new, request_id=request)  # the redelivery still finds every change
    assert len(await changes_for(outbox_engine, request)) == 4


async def test_a_failing_row_write_records_no_change(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.upsert(fetch_of(body_of(examples_dir), T0), request_id=uuid4())
    request = uuid4()
    real_execute = store._execute

    async def execute_then_fail(*args: Any, **kwargs: Any) -> Any:
        await real_execute(*args, **kwargs)
        raise RuntimeError("the row write failed")

    monkeypatch.setattr(store, "_execute", execute_then_fail)
    with pytest.raises(RuntimeError, match="row write failed"):
        await store.upsert(fetch_of(bumped(examples_dir), T0 + timedelta(days=7)), request_id=request)
    assert await changes_for(outbox_engine, request) == []
    assert await store.previous(DOT) == fetch_of(body_of(examples_dir), T0).snapshot


# --- exact numbers ----------------------------------------------------------------------------------

RATE_38 = "16.66666666666666666666666666666666666667"  # as a JSON number with 38 decimals


def raw_percent_fetch(examples_dir: Path, percent: str, at: datetime) -> InspectionsFetch:
    """The example with the US vehicle out-of-service percent served as the raw JSON number `percent`."""
    body = body_of(examples_dir)
    body["us_inspections"]["vehicle"]["out_of_service_percent"] = "@percent@"
    raw = json.dumps(body).replace('"@percent@"', percent).encode()
    result = parse_response(200, {}, raw, DOT, at)
    assert isinstance(result, InspectionsFetch), result
    return result


async def test_a_38_decimal_percent_is_stored_and_read_back_exactly(
    store: Store, examples_dir: Path, database_url: str
) -> None:
    fetch = raw_percent_fetch(examples_dir, RATE_38, T0)
    await store.upsert(fetch, request_id=uuid4())
    held = await store.previous(DOT)
    assert held == fetch.snapshot
    assert held.us_inspections is not None
    assert held.us_inspections.vehicle is not None
    assert held.us_inspections.vehicle.out_of_service_percent == Decimal(RATE_38)
    [version] = await store.versions(DOT)
    assert version.snapshot == fetch.snapshot
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            [content] = (await connection.execute(text("SELECT content FROM inspections_snapshot"))).scalars()
    finally:
        await engine.dispose()
    assert f'"out_of_service_percent":"{RATE_38}"' in content  # decimal text, not a float
    assert await store.upsert(
        raw_percent_fetch(examples_dir, RATE_38, T0 + timedelta(days=1)), request_id=uuid4()
    ) == Counts(fetched=1, unchanged=1)


async def test_a_percent_moved_only_in_the_20th_decimal_updates_the_snapshot(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    request = uuid4()
    await store.upsert(raw_percent_fetch(examples_dir, "13.33333333333333333331", T0), request_id=uuid4())
    later = raw_percent_fetch(examples_dir, "13.33333333333333333332", T0 + timedelta(days=1))
    assert await store.upsert(later, request_id=request) == Counts(fetched=1, updated=1)
    assert await store.previous(DOT) == later.snapshot
    assert await changes_for(outbox_engine, request) == []  # below the OOS threshold: no change fact
