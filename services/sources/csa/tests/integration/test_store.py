"""The csa store on SQLite and PostgreSQL: counts, idempotence, history, absence, late fetches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import MetaData, String, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import fmcsa_source_csa.store as store_module
from fmcsa_events.decimals import MAX_TEXT_LENGTH
from fmcsa_events.models import CarrierDataChanged, ChangeKind, Counts
from fmcsa_runtime.database import create_engine, is_sqlite
from fmcsa_source_csa.domain.changes import detect_changes
from fmcsa_source_csa.domain.model import BasicsAnswer, CarrierFacts, CsaFetch, PercentileStatus, SafetyRating
from fmcsa_source_csa.domain.parse import assemble, parse_basics, parse_carrier
from fmcsa_source_csa.store import CsaBasicHistory, CsaCarrierHistory, Store, widen_decimal_columns
from fmcsa_source_kit.guard import DropGuard, create_suspect_drops
from fmcsa_source_kit.outbox import changes_for, create_outbox, record_changes

NOW = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)
DOT = "2847193"


def example_fetch(examples_dir: Path, *, dot: str = DOT, now: datetime = NOW) -> CsaFetch:
    carrier_raw = json.loads((examples_dir / "qcmobile-carrier.json").read_bytes())
    carrier_raw["content"]["carrier"]["dotNumber"] = int(dot)
    basics_raw = json.loads((examples_dir / "qcmobile-basics-not-public.json").read_bytes())
    for entry in basics_raw["content"]:
        entry["basic"]["id"]["dotNumber"] = int(dot)
    basics_raw["retrievalDate"] = now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    carrier = parse_carrier(200, {}, json.dumps(carrier_raw).encode(), dot, now)
    answer = parse_basics(200, {}, json.dumps(basics_raw).encode(), dot, now)
    assert isinstance(carrier, CarrierFacts)
    assert isinstance(answer, BasicsAnswer)
    return assemble(dot, carrier, answer, now)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.connect(database_url)
    yield opened
    await opened.close()


async def count_rows(database_url: str, table: type[CsaBasicHistory] | type[CsaCarrierHistory]) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())
    finally:
        await engine.dispose()


async def test_a_first_fetch_inserts_every_basic_and_the_carrier(store: Store, examples_dir: Path) -> None:
    counts = await store.upsert(example_fetch(examples_dir), request_id=uuid4())
    assert counts == Counts(fetched=6, inserted=6, updated=0, unchanged=0)


async def test_the_same_fetch_again_is_all_unchanged(
    store: Store, examples_dir: Path, database_url: str
) -> None:
    fetch = example_fetch(examples_dir)
    await store.upsert(fetch, request_id=uuid4())
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=6, unchanged=6)
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=6, unchanged=6)
    assert await count_rows(database_url, CsaBasicHistory) == 5
    assert await count_rows(database_url, CsaCarrierHistory) == 1


async def test_the_same_data_fetched_later_is_unchanged(store: Store, examples_dir: Path) -> None:
    await store.upsert(example_fetch(examples_dir), request_id=uuid4())
    later = example_fetch(examples_dir, now=NOW + timedelta(hours=6))
    assert await store.upsert(later, request_id=uuid4()) == Counts(fetched=6, unchanged=6)
    held = await store.previous(DOT)
    assert held is not None
    assert held.retrieved_at == later.retrieved_at


async def test_changed_records_count_as_updated_and_the_rest_unchanged(
    store: Store, examples_dir: Path
) -> None:
    first = example_fetch(examples_dir)
    await store.upsert(first, request_id=uuid4())
    later = example_fetch(examples_dir, now=NOW + timedelta(days=1))
    moved = replace(later.basics[4], measure=Decimal("5.1"), violations=4)
    changed = replace(
        later,
        carrier=replace(later.carrier, safety_rating=SafetyRating.CONDITIONAL),
        basics=(*later.basics[:4], moved),
    )
    assert await store.upsert(changed, request_id=uuid4()) == Counts(fetched=6, updated=2, unchanged=4)
    held = await store.previous(DOT)
    assert held is not None
    assert held.carrier.safety_rating is SafetyRating.CONDITIONAL
    assert held.basics[4].measure == Decimal("5.1")


async def test_previous_returns_what_was_held_before_the_next_upsert(
    store: Store, examples_dir: Path
) -> None:
    assert await store.previous(DOT) is None
    fetch = example_fetch(examples_dir)
    await store.upsert(fetch, request_id=uuid4())
    held = await store.previous(DOT)
    assert held is not None
    assert held.carrier == fetch.carrier
    assert held.basics == fetch.basics
    assert (held.dot, held.retrieved_at, held.upstream_as_of) == (DOT, NOW, datetime(2025, 11, 1, tzinfo=UTC))


async def test_a_new_basic_is_inserted_and_a_vanished_one_is_marked_absent_not_counted(
    store: Store, examples_dir: Path
) -> None:
    fetch = example_fetch(examples_dir)
    await store.upsert(replace(fetch, basics=fetch.basics[:4]), request_id=uuid4())
    later = example_fetch(examples_dir, now=NOW + timedelta(days=1))
    assert await store.upsert(later, request_id=uuid4()) == Counts(fetched=6, inserted=1, unchanged=5)
    without_two = replace(example_fetch(examples_dir, now=NOW + timedelta(days=2)), basics=later.basics[:3])
    assert await store.upsert(without_two, request_id=uuid4()) == Counts(fetched=4, unchanged=4)
    held = await store.previous(DOT)
    assert held is not None
    assert [b.basics_id for b in held.basics] == [11, 12, 13]
    back = example_fetch(examples_dir, now=NOW + timedelta(days=3))
    assert await store.upsert(back, request_id=uuid4()) == Counts(fetched=6, updated=2, unchanged=4)
    held = await store.previous(DOT)
    assert held is not None
    assert [b.basics_id for b in held.basics] == [11, 12, 13, 14, 15]


async def test_a_carrier_with_no_basics_is_one_record(store: Store, examples_dir: Path) -> None:
    fetch = replace(example_fetch(examples_dir), basics=())
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=1, inserted=1)
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=1, unchanged=1)


async def test_a_late_older_fetch_never_overwrites_newer_data(store: Store, examples_dir: Path) -> None:
    newer = example_fetch(examples_dir, now=NOW + timedelta(days=1))
    await store.upsert(newer, request_id=uuid4())
    older = example_fetch(examples_dir, now=NOW)
    older = replace(older, carrier=replace(older.carrier, legal_name="OLD NAME LLC"))
    assert await store.upsert(older, request_id=uuid4()) == Counts(fetched=6, unchanged=6)
    held = await store.previous(DOT)
    assert held is not None
    assert held.carrier.legal_name == newer.carrier.legal_name
    assert held.retrieved_at == newer.retrieved_at


async def test_history_keeps_one_version_per_month_and_content(
    store: Store, examples_dir: Path, database_url: str
) -> None:
    november = example_fetch(examples_dir)
    await store.upsert(november, request_id=uuid4())
    changed = replace(november, basics=(replace(november.basics[0], violations=9), *november.basics[1:]))
    await store.upsert(replace(changed, retrieved_at=NOW + timedelta(hours=1)), request_id=uuid4())
    december = example_fetch(examples_dir, now=datetime(2025, 12, 5, tzinfo=UTC))
    assert december.upstream_as_of == datetime(2025, 12, 1, tzinfo=UTC)
    assert await store.upsert(december, request_id=uuid4()) == Counts(fetched=6, updated=1, unchanged=5)
    # November: 5 + 1 changed version; December: 5 again (what the record said that month).
    assert await count_rows(database_url, CsaBasicHistory) == 11
    assert await count_rows(database_url, CsaCarrierHistory) == 2


async def test_labels_are_refreshed_without_counting_a_change(store: Store, examples_dir: Path) -> None:
    fetch = example_fetch(examples_dir)
    await store.upsert(fetch, request_id=uuid4())
    relabelled = replace(
        fetch, basics=(replace(fetch.basics[0], name="Unsafe Driving (new)"), *fetch.basics[1:])
    )
    assert await store.upsert(relabelled, request_id=uuid4()) == Counts(fetched=6, unchanged=6)
    held = await store.previous(DOT)
    assert held is not None
    assert held.basics[0].name == "Unsafe Driving (new)"


async def test_upserts_of_many_carriers_at_once_are_all_counted(store: Store, examples_dir: Path) -> None:
    dots = [str(1000000 + n) for n in range(20)]
    first = await asyncio.gather(
        *(store.upsert(example_fetch(examples_dir, dot=dot), request_id=uuid4()) for dot in dots)
    )
    assert set(first) == {Counts(fetched=6, inserted=6)}
    again = await asyncio.gather(
        *(store.upsert(example_fetch(examples_dir, dot=dot), request_id=uuid4()) for dot in dots)
    )
    assert set(again) == {Counts(fetched=6, unchanged=6)}


async def test_two_stores_racing_on_the_same_new_carrier_both_succeed(
    database_url: str, examples_dir: Path
) -> None:
    one, two = await Store.connect(database_url), await Store.connect(database_url)
    try:
        fetch = example_fetch(examples_dir)
        results = await asyncio.gather(
            one.upsert(fetch, request_id=uuid4()), two.upsert(fetch, request_id=uuid4())
        )
        assert sorted(r.inserted for r in results) == [0, 6]
        assert sorted(r.unchanged for r in results) == [0, 6]
    finally:
        await one.close()
        await two.close()


async def test_connecting_twice_keeps_the_tables_and_rows(database_url: str, examples_dir: Path) -> None:
    first = await Store.connect(database_url)
    await first.upsert(example_fetch(examples_dir), request_id=uuid4())
    await first.close()
    second = await Store.connect(database_url)
    try:
        assert await second.upsert(example_fetch(examples_dir), request_id=uuid4()) == Counts(
            fetched=6, unchanged=6
        )
    finally:
        await second.close()


async def test_no_stored_row_holds_the_tax_id(store: Store, examples_dir: Path, database_url: str) -> None:
    await store.upsert(example_fetch(examples_dir), request_id=uuid4())
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            dumped = [
                str(row)
                for table in ("csa_carrier", "csa_carrier_history", "csa_basic", "csa_basic_history")
                for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            ]
    finally:
        await engine.dispose()
    assert dumped
    assert not any("824417093" in row for row in dumped)


# --- change facts in the outbox -------------------------------------------------------------------


@pytest.fixture
async def outbox_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def passenger_fetch(examples_dir: Path, *, now: datetime, unsafe_driving: str) -> CsaFetch:
    """The example passenger carrier (public percentiles) with Unsafe Driving at `unsafe_driving`%."""
    basics_raw = json.loads((examples_dir / "qcmobile-basics.json").read_bytes())
    for entry in basics_raw["content"]:
        entry["basic"]["id"]["dotNumber"] = int(DOT)
        if entry["basic"]["basicsType"]["basicsId"] == 11:
            entry["basic"]["basicsPercentile"] = f"{unsafe_driving}%"
    basics_raw["retrievalDate"] = now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    carrier_raw = json.loads((examples_dir / "qcmobile-carrier.json").read_bytes())
    carrier_raw["content"]["carrier"]["dotNumber"] = int(DOT)
    carrier = parse_carrier(200, {}, json.dumps(carrier_raw).encode(), DOT, now)
    answer = parse_basics(200, {}, json.dumps(basics_raw).encode(), DOT, now)
    assert isinstance(carrier, CarrierFacts)
    assert isinstance(answer, BasicsAnswer)
    return assemble(DOT, carrier, answer, now)


async def test_the_outbox_holds_exactly_the_changes_of_the_new_fetch(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    first, second = uuid4(), uuid4()
    old = passenger_fetch(examples_dir, now=NOW, unsafe_driving="34")
    new = passenger_fetch(examples_dir, now=NOW + timedelta(days=31), unsafe_driving="57")
    await store.upsert(old, request_id=first)
    await store.upsert(new, request_id=second)
    assert await changes_for(outbox_engine, first) == []  # a baseline
    recorded = await changes_for(outbox_engine, second)
    assert recorded == detect_changes(old, new, request_id=second, observed_at=new.retrieved_at)
    assert [(c.kind, c.subject, c.dot, c.request_id) for c in recorded] == [
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving", DOT, second),
        (ChangeKind.BASIC_ALERT_STARTED, "unsafe_driving", DOT, second),
    ]
    assert recorded[0].before == {
        "percentile": "34",
        "status": "public",
        "measure": "0.52",
        "threshold": 50,
        "alert": False,
    }
    assert recorded[0].after == {**recorded[0].before, "percentile": "57", "alert": True}
    assert recorded[0].upstream_as_of == datetime(2025, 12, 1, tzinfo=UTC)
    assert recorded[0].observed_at == new.retrieved_at


async def test_a_re_upsert_or_a_redelivered_request_records_nothing_new(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    first, second, third = uuid4(), uuid4(), uuid4()
    await store.upsert(passenger_fetch(examples_dir, now=NOW, unsafe_driving="34"), request_id=first)
    new = passenger_fetch(examples_dir, now=NOW + timedelta(days=31), unsafe_driving="57")
    await store.upsert(new, request_id=second)
    recorded = await changes_for(outbox_engine, second)
    assert await store.upsert(new, request_id=second) == Counts(fetched=6, unchanged=6)  # redelivered
    assert await changes_for(outbox_engine, second) == recorded
    await store.upsert(new, request_id=third)  # the same data, another request
    assert await changes_for(outbox_engine, third) == []
    back = passenger_fetch(examples_dir, now=NOW + timedelta(days=62), unsafe_driving="34")
    await store.upsert(back, request_id=third)  # a request whose first delivery stored nothing new
    assert [(c.kind, c.subject) for c in await changes_for(outbox_engine, third)] == [
        (ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving"),
        (ChangeKind.BASIC_ALERT_CLEARED, "unsafe_driving"),
    ]


async def test_a_basic_turning_not_public_is_recorded(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    request = uuid4()
    old = passenger_fetch(examples_dir, now=NOW, unsafe_driving="34")
    hidden = replace(
        old.basics[2], percentile=None, percentile_status=PercentileStatus.NOT_PUBLIC
    )  # Driver Fitness
    new = replace(
        old, retrieved_at=NOW + timedelta(days=31), basics=(*old.basics[:2], hidden, *old.basics[3:])
    )
    await store.upsert(old, request_id=uuid4())
    await store.upsert(new, request_id=request)
    [change] = await changes_for(outbox_engine, request)
    assert (change.kind, change.subject) == (ChangeKind.BASIC_BECAME_NOT_PUBLIC, "driver_fitness")
    assert isinstance(change.after, dict)
    assert (change.after["percentile"], change.after["status"]) == (None, "not_public")


async def test_a_failure_after_recording_the_changes_rolls_back_rows_and_changes_together(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = passenger_fetch(examples_dir, now=NOW, unsafe_driving="34")
    new = passenger_fetch(examples_dir, now=NOW + timedelta(days=31), unsafe_driving="57")
    await store.upsert(old, request_id=uuid4())
    request = uuid4()

    async def record_then_crash(connection: AsyncConnection, changes: Sequence[CarrierDataChanged]) -> None:
        await record_changes(connection, changes)
        raise RuntimeError("crashed after recording, before the commit")

    monkeypatch.setattr(store_module, "record_changes", record_then_crash)
    with pytest.raises(RuntimeError, match="before the commit"):
        await store.upsert(new, request_id=request)
    assert await changes_for(outbox_engine, request) == []
    held = await store.previous(DOT)
    assert held is not None
    assert held.basics == old.basics

    monkeypatch.undo()
    await store.upsert(new, request_id=request)  # the redelivery finds the old rows: nothing was lost
    assert len(await changes_for(outbox_engine, request)) == 2


async def test_a_failing_row_write_records_no_change(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.upsert(passenger_fetch(examples_dir, now=NOW, unsafe_driving="34"), request_id=uuid4())
    request = uuid4()

    async def failing_write(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the row write failed")

    monkeypatch.setattr(store, "_write_basics", failing_write)
    new = passenger_fetch(examples_dir, now=NOW + timedelta(days=31), unsafe_driving="57")
    with pytest.raises(RuntimeError, match="row write failed"):
        await store.upsert(new, request_id=request)
    assert await changes_for(outbox_engine, request) == []


async def test_connect_creates_the_outbox(database_url: str, outbox_engine: AsyncEngine) -> None:
    opened = await Store.connect(database_url)
    try:
        assert await changes_for(outbox_engine, uuid4()) == []
    finally:
        await opened.close()


# --- exact numbers ----------------------------------------------------------------------------------

RATE_38 = "16.66666666666666666666666666666666666667"  # vehicleOosRate as QCMobile serves it
MEASURE_38 = "0.51000000000000000000000000000000000001"
PERCENTILE_38 = "57.00000000000000000000000000000000000001"  # 41 characters: more than VARCHAR(40)


def exact_fetch(
    examples_dir: Path, *, now: datetime = NOW, rate: str = RATE_38, percentile: str = PERCENTILE_38
) -> CsaFetch:
    """The passenger example with a 38-decimal OOS rate (a JSON number), and Unsafe Driving's measure
    and percentile with 38 decimals, parsed from bodies as the upstream would send them.
    """
    basics_raw = json.loads((examples_dir / "qcmobile-basics.json").read_bytes())
    for entry in basics_raw["content"]:
        entry["basic"]["id"]["dotNumber"] = int(DOT)
        if entry["basic"]["basicsType"]["basicsId"] == 11:
            entry["basic"]["basicsPercentile"] = f"{percentile}%"
            entry["basic"]["measureValue"] = MEASURE_38
    basics_raw["retrievalDate"] = now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    carrier_raw = json.loads((examples_dir / "qcmobile-carrier.json").read_bytes())
    carrier_raw["content"]["carrier"]["dotNumber"] = int(DOT)
    carrier_raw["content"]["carrier"]["vehicleOosRate"] = "@rate@"
    carrier_body = json.dumps(carrier_raw).replace('"@rate@"', rate).encode()
    carrier = parse_carrier(200, {}, carrier_body, DOT, now)
    answer = parse_basics(200, {}, json.dumps(basics_raw).encode(), DOT, now)
    assert isinstance(carrier, CarrierFacts)
    assert isinstance(answer, BasicsAnswer)
    return assemble(DOT, carrier, answer, now)


async def stored_basic_text(database_url: str, table: str = "csa_basic") -> tuple[object, object]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(f"SELECT percentile, measure FROM {table} WHERE basics_id = 11 ORDER BY 1 DESC")
                )
            ).first()
    finally:
        await engine.dispose()
    assert row is not None
    return row[0], row[1]


async def test_38_decimal_numbers_are_stored_and_read_back_exactly(
    store: Store, examples_dir: Path, database_url: str
) -> None:
    fetch = exact_fetch(examples_dir)
    assert await store.upsert(fetch, request_id=uuid4()) == Counts(fetched=6, inserted=6)
    held = await store.previous(DOT)
    assert held is not None
    assert held.carrier.vehicle_oos_rate == Decimal(RATE_38)
    assert held.carrier == fetch.carrier
    unsafe = held.basics[0]
    assert (unsafe.basics_id, unsafe.percentile, unsafe.measure) == (
        11,
        Decimal(PERCENTILE_38),
        Decimal(MEASURE_38),
    )
    assert held.basics == fetch.basics
    # stored as text, not as a float (SQLite's NUMERIC affinity would make one)
    assert await stored_basic_text(database_url) == (PERCENTILE_38, MEASURE_38)
    assert await stored_basic_text(database_url, "csa_basic_history") == (PERCENTILE_38, MEASURE_38)
    assert await store.upsert(exact_fetch(examples_dir), request_id=uuid4()) == Counts(fetched=6, unchanged=6)


async def test_an_oos_rate_moved_only_in_the_20th_decimal_updates_the_carrier(
    store: Store, examples_dir: Path
) -> None:
    await store.upsert(exact_fetch(examples_dir, rate="13.33333333333333333331"), request_id=uuid4())
    later = exact_fetch(examples_dir, now=NOW + timedelta(days=1), rate="13.33333333333333333332")
    assert await store.upsert(later, request_id=uuid4()) == Counts(fetched=6, updated=1, unchanged=5)
    held = await store.previous(DOT)
    assert held is not None
    assert held.carrier.vehicle_oos_rate == Decimal("13.33333333333333333332")


async def test_a_percentile_moved_only_in_the_38th_decimal_is_a_recorded_change(
    store: Store, examples_dir: Path, outbox_engine: AsyncEngine
) -> None:
    moved = "57.00000000000000000000000000000000000002"
    request = uuid4()
    await store.upsert(exact_fetch(examples_dir), request_id=uuid4())
    later = exact_fetch(examples_dir, now=NOW + timedelta(days=31), percentile=moved)
    assert await store.upsert(later, request_id=request) == Counts(fetched=6, updated=1, unchanged=5)
    [change] = await changes_for(outbox_engine, request)
    assert (change.kind, change.subject) == (ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving")
    assert isinstance(change.before, dict)
    assert isinstance(change.after, dict)
    assert (change.before["percentile"], change.after["percentile"]) == (PERCENTILE_38, moved)
    assert change.after["measure"] == MEASURE_38


async def test_a_store_made_before_exact_numbers_is_migrated_on_connect(
    database_url: str, examples_dir: Path
) -> None:
    """An old data folder: the BASIC decimal columns were VARCHAR(40), too short for 38 decimals on
    PostgreSQL. `connect` widens them and keeps the rows; an old SQLite file just works.
    """
    old = MetaData()
    for table in store_module.TABLES:
        copy = table.to_metadata(old)
        for name in ("percentile", "measure"):
            if name in copy.c:
                copy.c[name].type = String(40)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(old.create_all)
    await create_outbox(engine)
    await create_suspect_drops(engine)
    stored = await Store(engine, DropGuard()).upsert(example_fetch(examples_dir), request_id=uuid4())
    assert stored == Counts(fetched=6, inserted=6)
    await engine.dispose()
    store = await Store.connect(database_url)
    try:
        later = exact_fetch(examples_dir, now=NOW + timedelta(days=31))
        assert (await store.upsert(later, request_id=uuid4())).updated >= 1
        held = await store.previous(DOT)
        assert held is not None
        assert held.basics == later.basics
        assert held.carrier.vehicle_oos_rate == Decimal(RATE_38)
    finally:
        await store.close()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(widen_decimal_columns) == []  # nothing left to widen
            lengths = await connection.run_sync(
                lambda sync: {
                    c["name"]: getattr(c["type"], "length", None)
                    for c in inspect(sync).get_columns("csa_basic")
                }
            )
    finally:
        await engine.dispose()
    if not is_sqlite(database_url):
        assert (lengths["percentile"], lengths["measure"]) == (MAX_TEXT_LENGTH, MAX_TEXT_LENGTH)
