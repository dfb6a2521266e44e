"""Snapshots on a real nats-server and real stores (SQLite and PostgreSQL): a rebuild starts from the
newest valid snapshot and folds only the events after it, into the same rows as a replay of the whole
stream; a snapshot of another schema version, or a corrupt one, is ignored with a log line;
`--verify` finds no difference from scratch nor from a snapshot; the command and the schedule save
snapshots into the bucket."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from status_support import busy_history, publish_history, publish_poison, store_rows
from structlog.testing import capture_logs

from fmcsa_events.topology import Topology, declare
from fmcsa_status.app import StatusWorker
from fmcsa_status.rebuild import Outcome, rebuild
from fmcsa_status.settings import Settings
from fmcsa_status.snapshot import bucket, list_snapshots, snapshot_now, take_snapshot
from fmcsa_status.store import StatusStore
from fmcsa_status_view.tables import SCHEMA_VERSION


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


@pytest.fixture
def settings(fresh_nats_url: str, database_url: str, tmp_path: Path) -> Settings:
    url = database_url
    return Settings(nats_url=fresh_nats_url, data_dir=tmp_path, database_url=url, rebuild_batch_size=50)


async def _rebuild(settings: Settings, nc: Client, **flags: bool) -> tuple[Outcome, str]:
    report = io.StringIO()
    outcome = await rebuild(settings, nc=nc, out=io.StringIO(), report=report, **flags)
    return outcome, report.getvalue()


async def _live_rows(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    store = await StatusStore.connect(settings.resolved_database_url())
    try:
        return await store_rows(store)
    finally:
        await store.close()


HISTORY = busy_history(seed=26, companies=8, rounds=5)  # late and early outcomes, repeats


async def test_a_rebuild_folds_only_the_tail_after_the_newest_snapshot_and_equals_a_replay(
    nc: Client, settings: Settings
) -> None:
    js = nc.jetstream()
    await publish_history(js, HISTORY[:150])
    await publish_poison(js)
    first, _ = await _rebuild(settings, nc, from_scratch=True)
    assert first.snapshot is None  # nothing in the bucket yet
    older = await snapshot_now(settings, nc=nc)
    mid = await publish_history(js, HISTORY[150:200])
    await _rebuild(settings, nc, from_scratch=True)
    saved = await snapshot_now(settings, nc=nc)
    assert (older.position, saved.position) == (first.position, mid)
    last = await publish_history(js, HISTORY[200:])

    tail, _ = await _rebuild(settings, nc)
    assert (tail.snapshot, tail.snapshot_position) == (saved.name, mid)  # the newest
    assert (tail.position, tail.events, tail.swapped) == (last, last - mid, True)  # only the tail folded
    from_snapshot = await _live_rows(settings)
    scratch, _ = await _rebuild(settings, nc, from_scratch=True)
    assert (scratch.snapshot, scratch.events, scratch.rejected) == (None, last, 1)
    assert await _live_rows(settings) == from_snapshot

    checked, report = await _rebuild(settings, nc, verify=True)
    assert (checked.snapshot, checked.different_rows, checked.position) == (saved.name, 0, last)
    assert report.splitlines()[-1].startswith(f"verify: 0 row(s) differ between the snapshot {saved.name}")
    checked, report = await _rebuild(settings, nc, verify=True, from_scratch=True)
    assert (checked.snapshot, checked.different_rows, checked.position) == (None, 0, last)
    assert report.splitlines()[-1] == f"verify: 0 row(s) differ between the live store and a replay to {last}"


async def test_a_snapshot_of_another_schema_version_or_corrupt_is_ignored_with_a_log_line(
    nc: Client, settings: Settings
) -> None:
    js = nc.jetstream()
    await publish_history(js, HISTORY[:120])
    await _rebuild(settings, nc, from_scratch=True)
    url = settings.resolved_database_url()
    valid = await take_snapshot(js, url, workdir=settings.data_dir)
    mid = await publish_history(js, HISTORY[120:180])
    await _rebuild(settings, nc, from_scratch=True)
    old = await take_snapshot(js, url, workdir=settings.data_dir, schema_version=SCHEMA_VERSION - 1)
    forged = (await take_snapshot(js, url, workdir=settings.data_dir)).name  # the newest
    lines = gzip.decompress(await _body(nc, forged)).decode().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("["))
    lines[row] = lines[row].replace("[", "[ ", 1)  # one changed byte, still JSON: only the checksum sees it
    await (await bucket(js)).put(forged, gzip.compress(("\n".join(lines) + "\n").encode()))
    assert old.position == mid > valid.position

    last = await publish_history(js, HISTORY[180:])
    with capture_logs() as logs:
        outcome, _ = await _rebuild(settings, nc)
    ignored = {(e["name"], e["reason"]) for e in logs if e["event"] == "status_snapshot_ignored"}
    assert ignored == {(forged, "checksum"), (old.name, "schema_version")}
    assert outcome.ignored == [(forged, "checksum"), (old.name, "schema_version")]
    assert (outcome.snapshot, outcome.events, outcome.position) == (valid.name, last - valid.position, last)
    from_snapshot = await _live_rows(settings)
    await _rebuild(settings, nc, from_scratch=True)
    assert await _live_rows(settings) == from_snapshot


async def test_only_corrupt_snapshots_mean_a_rebuild_from_scratch(nc: Client, settings: Settings) -> None:
    js = nc.jetstream()
    last = await publish_history(js, HISTORY[:100])
    await _rebuild(settings, nc, from_scratch=True)
    saved = await snapshot_now(settings, nc=nc)
    body = await _body(nc, saved.name)
    await (await bucket(js)).put(saved.name, body[: len(body) // 2])  # cut short
    with capture_logs() as logs:
        outcome, _ = await _rebuild(settings, nc)
    assert [(e["name"], e["reason"]) for e in logs if e["event"] == "status_snapshot_ignored"] == [
        (saved.name, "corrupt")
    ]
    assert (outcome.snapshot, outcome.events, outcome.position) == (None, last, last)
    checked, report = await _rebuild(settings, nc, verify=True)  # no valid snapshot: the live store
    assert checked.different_rows == 0
    assert report.splitlines()[-1] == f"verify: 0 row(s) differ between the live store and a replay to {last}"


async def test_the_command_saves_a_snapshot_and_retires_all_but_the_newest_it_keeps(
    nc: Client, settings: Settings, fresh_nats_url: str, database_url: str
) -> None:
    js = nc.jetstream()
    positions, names = [], []
    for part in (HISTORY[:40], HISTORY[40:80], HISTORY[80:120]):
        positions.append(await publish_history(js, part))
        await _rebuild(settings, nc, from_scratch=True)
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fmcsa_status.snapshot",
            env={
                **os.environ,
                "FMCSA_NATS_URL": fresh_nats_url,
                "FMCSA_STATUS_DATABASE_URL": database_url,
                "FMCSA_DATA_DIR": str(settings.data_dir),
                "FMCSA_STATUS_SNAPSHOT_KEEP": "2",
            },
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(command.communicate(), 60)
        assert command.returncode == 0, stderr.decode()
        assert f"at position {positions[-1]} (" in stdout.decode()
        names.append(stdout.decode().split("saved ")[1].split()[0])
    assert [(s.name, s.position) for s in await list_snapshots(js)] == [  # the oldest retired
        (names[2], positions[2]),
        (names[1], positions[1]),
    ]
    store = await bucket(js)
    assert (await store.get_info(names[0], show_deleted=True)).deleted
    chunks = f"$O.fmcsa_status_snapshots.C.{(await store.get_info(names[1])).nuid}"
    assert (await js.get_last_msg("OBJ_fmcsa_status_snapshots", chunks)).data  # a kept one's chunks stay


async def test_the_projector_saves_a_snapshot_on_its_schedule(
    nc: Client, settings: Settings, wait_until: Any
) -> None:
    worker = StatusWorker(settings.model_copy(update={"snapshot_interval_s": 0.05, "batch_wait_ms": 5}))
    await worker.start(nc)
    try:
        last = await publish_history(nc.jetstream(), HISTORY[:60])

        async def saved_at_last() -> bool:
            return worker.snapshot_position == last

        await wait_until(saved_at_last, what=f"a scheduled snapshot at {last}", within_s=30)
    finally:
        await worker.stop(grace_s=5)
    assert (await list_snapshots(nc.jetstream()))[0].position == last
    outcome, _ = await _rebuild(settings, nc)
    assert (outcome.snapshot_position, outcome.events) == (last, 0)


async def test_a_snapshot_of_one_kind_of_store_loads_into_the_other(
    nc: Client, settings: Settings, database_url: str, tmp_path: Path, postgres_url: str | None
) -> None:
    """SQLite to PostgreSQL and back: the snapshot's values are neutral."""
    if postgres_url is None:
        pytest.skip("needs PostgreSQL beside SQLite")
    js = nc.jetstream()
    await publish_history(js, HISTORY)
    await publish_poison(js)
    await _rebuild(settings, nc, from_scratch=True)
    saved = await snapshot_now(settings, nc=nc)
    async with _other_store(database_url, postgres_url, tmp_path) as other_url:
        other = settings.model_copy(update={"database_url": other_url})
        outcome, _ = await _rebuild(other, nc)
        assert (outcome.snapshot, outcome.events, outcome.position) == (saved.name, 0, saved.position)
        assert await _live_rows(other) == await _live_rows(settings)


@contextlib.asynccontextmanager
async def _other_store(database_url: str, postgres_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A SQLite file beside a PostgreSQL store; a PostgreSQL schema of its own beside a SQLite one."""
    if not database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.sqlite3'}"
        return
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}search_path={schema}"
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()


async def _body(nc: Client, name: str) -> bytes:
    result = await (await bucket(nc.jetstream())).get(name)
    data = result.data
    assert isinstance(data, bytes)
    assert json.loads(gzip.decompress(data).splitlines()[0])["position"] >= 0
    return data
