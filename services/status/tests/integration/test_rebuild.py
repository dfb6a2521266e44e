"""Replay: a rebuild from the first event equals the live projection (`--verify`), and a rebuilt
store is swapped in while a reader keeps answering and the live projector keeps folding."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from status_support import (
    busy_history,
    expected_rows,
    first_difference,
    publish_history,
    publish_poison,
    read_stream,
    store_rows,
)

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.topology import Topology, declare
from fmcsa_status.handlers import Projector
from fmcsa_status.rebuild import rebuild
from fmcsa_status.settings import Settings
from fmcsa_status.store import StatusStore
from fmcsa_status_view.database import open_database
from fmcsa_status_view.location import Location
from fmcsa_status_view.query import StatusView


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


async def test_replay_equals_live_and_verify_names_a_row_that_differs(
    nc: Client, fresh_nats_url: str, database_url: str, tmp_path: Path, wait_until: Any
) -> None:
    js = nc.jetstream()
    history = busy_history(seed=21, companies=8, rounds=5)  # late and early outcomes, repeats
    store = await StatusStore.connect(database_url)
    projector = Projector(js, store, batch_size=64, batch_wait_s=0.01)
    projector.start()
    view = StatusView(database_url)
    try:
        await publish_history(js, history[:200])
        await publish_poison(js)
        last = await publish_history(js, history[200:])
        await wait_until(lambda: _at(view, last), what=f"position {last}")
        settings = Settings(nats_url=fresh_nats_url, data_dir=tmp_path, database_url=database_url)
        out, report = io.StringIO(), io.StringIO()
        same = await rebuild(settings, verify=True, out=out, report=report, nc=nc)
        assert (same.different_rows, same.position, same.events, same.rejected) == (0, last, last, 1)
        assert "verify: 0 row(s) differ" in report.getvalue()
        assert "events/s" in out.getvalue()  # the progress line
        db = open_database(Location(database_url).live_url(), writer=True)
        async with db.transaction() as session:  # a wrong row, as a bug would leave it
            await session.execute("UPDATE status_source SET consecutive_failures = 99 WHERE dot = 1000007")
        await db.dispose()
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fmcsa_status.rebuild", "--verify",
            env={**os.environ, "FMCSA_NATS_URL": fresh_nats_url, "FMCSA_STATUS_DATABASE_URL": database_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, _ = await asyncio.wait_for(command.communicate(), 60)
        assert command.returncode == 1  # `./fmcsa rebuild-status --verify` fails on a difference
        lines = stdout.decode().splitlines()
        rows = len(SourceKey)  # the company's row of every source differs
        assert len([line for line in lines if "consecutive_failures live=99 replay=" in line]) == rows
        assert lines[-1].startswith(f"verify: {rows} row(s) differ")
        if Location(database_url).sqlite:  # nothing left beside the live store
            assert _files(tmp_path, "test.*") == ["test.sqlite3", "test.sqlite3-shm", "test.sqlite3-wal"]
    finally:
        await projector.stop(grace_s=5)
        await store.close()
        await view.close()


async def test_verify_covers_the_change_feed_and_the_history(
    nc: Client, fresh_nats_url: str, database_url: str, tmp_path: Path, wait_until: Any
) -> None:
    js = nc.jetstream()
    history = busy_history(seed=8, companies=6, rounds=6)  # changes (some republished), repeated as-of
    store = await StatusStore.connect(database_url)
    projector = Projector(js, store, batch_size=32, batch_wait_s=0.01)
    projector.start()
    view = StatusView(database_url)
    try:
        last = await publish_history(js, history)
        await wait_until(lambda: _at(view, last), what=f"position {last}")
        changes = (await view.changes(limit=500)).items
        assert changes
        assert len({c.event_id for c in changes}) == len(changes)
        assert await view.history(changes[0].dot, source=changes[0].source)
        settings = Settings(nats_url=fresh_nats_url, data_dir=tmp_path, database_url=database_url)
        same = await rebuild(settings, verify=True, out=io.StringIO(), report=io.StringIO(), nc=nc)
        assert (same.different_rows, same.position) == (0, last)
        await projector.stop(grace_s=5)
        db = open_database(Location(database_url).live_url(), writer=True)
        async with db.transaction() as session:  # wrong rows, as a bug would leave them
            position = changes[-1].position
            await session.execute(f"UPDATE status_change SET after = '99' WHERE position = {position}")
            await session.execute("UPDATE status_history SET request_id = 'tampered' WHERE dot = 1000000")
        await db.dispose()
        report = io.StringIO()
        found = await rebuild(settings, verify=True, out=io.StringIO(), report=report, nc=nc)
        lines = report.getvalue().splitlines()
        assert f"status_change ({position},): after live=99 replay=" in "\n".join(lines)
        tampered = [line for line in lines if line.startswith("status_history (1000000,")]
        assert tampered
        assert all("request_id live='tampered'" in line for line in tampered)
        assert found.different_rows == 1 + len(tampered)
    finally:
        await projector.stop(grace_s=5)
        await store.close()
        await view.close()


async def test_a_rebuilt_store_is_swapped_in_while_readers_answer_and_folding_goes_on(
    nc: Client, fresh_nats_url: str, database_url: str, tmp_path: Path, wait_until: Any
) -> None:
    js = nc.jetstream()
    history = busy_history(seed=33, companies=10, rounds=6)
    third = len(history) // 3
    store = await StatusStore.connect(database_url)
    projector = Projector(js, store, batch_size=64, batch_wait_s=0.01)
    projector.start()
    view = StatusView(database_url)
    reader = _Reader(database_url)
    try:
        first = await publish_history(js, history[:third])
        await wait_until(lambda: _at(view, first), what=f"position {first}")
        reading = asyncio.create_task(reader.run())
        env = {
            **os.environ,
            "FMCSA_NATS_URL": fresh_nats_url,
            "FMCSA_DATA_DIR": str(tmp_path),
            "FMCSA_STATUS_DATABASE_URL": database_url,
            "FMCSA_STATUS_REBUILD_BATCH_SIZE": "100",
            "FMCSA_LOG_JSON": "true",
        }
        command = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fmcsa_status.rebuild",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        second = await publish_history(js, history[third : 2 * third])  # while the rebuild runs
        stdout, stderr = await asyncio.wait_for(command.communicate(), 60)
        assert command.returncode == 0, stderr.decode()[-2000:]
        assert b"swapped in a store at position" in stdout
        last = await publish_history(js, history[2 * third :])  # after the swap: into the new store
        await wait_until(lambda: _at(view, last), what=f"position {last}", within_s=20)
        reader.done = True
        answers = await reading
        assert answers > 10
        assert reader.errors == []
        assert reader.positions == sorted(reader.positions)  # readers never went back in time
        if Location(database_url).sqlite:
            assert Location(database_url).live_path().name.startswith("test.r")
        assert second < last
        live = await StatusStore.connect(database_url)
        try:
            want = expected_rows(await read_stream(js, last))
            assert first_difference(want, await store_rows(live)) is None
        finally:
            await live.close()
    finally:
        reader.done = True
        await projector.stop(grace_s=5)
        await store.close()
        await view.close()
        await reader.view.close()


class _Reader:
    """What the gateway does: read, read, read; every answer must come, none may fail."""

    def __init__(self, url: str) -> None:
        self.view = StatusView(url)
        self.done = False
        self.errors: list[str] = []
        self.positions: list[int] = []

    async def run(self) -> int:
        answers = 0
        while not self.done:
            try:
                summary = await self.view.summary()
                self.positions.append(summary.position)
                page = await self.view.list_companies(limit=3)
                for company in page.items:
                    if await self.view.company_status(company.dot) is None:
                        self.errors.append(f"{company.dot} vanished")
                answers += 1
            except Exception as error:  # every failure is a finding of this test
                self.errors.append(repr(error))
            await asyncio.sleep(0)  # let the projector and the publisher run between reads
        return answers


def _files(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


async def _at(view: StatusView, seq: int) -> bool:
    return await view.applied_position() >= seq


async def test_the_swap_waits_for_a_reader_that_holds_a_table_past_the_lock_timeout(
    nc: Client, fresh_nats_url: str, database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL: a reader's open transaction holds a live table for longer than the swap's lock
    timeout (200 ms); the swap's lock is refused a few times, retried (stamina), and granted once the
    reader is done. SQLite swaps a pointer file and takes no such lock."""
    if Location(database_url).sqlite:
        pytest.skip("a lock timeout is PostgreSQL's")
    js = nc.jetstream()
    store = await StatusStore.connect(database_url)
    projector = Projector(js, store, batch_size=64, batch_wait_s=0.01)
    projector.start()
    view = StatusView(database_url)
    reader = open_database(Location(database_url).live_url(), writer=False)
    try:
        last = await publish_history(js, busy_history(seed=5, companies=3, rounds=2))
        holding, released = asyncio.Event(), asyncio.Event()

        async def hold_a_table() -> None:
            async with reader.transaction() as session:
                await session.scalar("SELECT seq FROM status_position WHERE id = 1")
                holding.set()
                await asyncio.sleep(1.5)  # seven lock timeouts of the swap
            released.set()

        held = asyncio.create_task(hold_a_table())
        await asyncio.wait({held, asyncio.create_task(holding.wait())}, return_when=asyncio.FIRST_COMPLETED)
        assert holding.is_set(), held.exception()
        settings = Settings(nats_url=fresh_nats_url, data_dir=tmp_path, database_url=database_url)
        outcome = await rebuild(settings, out=io.StringIO(), report=io.StringIO(), nc=nc)
        assert released.is_set()  # the swap got its lock only after the reader let go
        await held
        assert outcome.swapped
        assert outcome.position >= last
        assert (await view.summary()).position >= last
    finally:
        await projector.stop(grace_s=5)
        await store.close()
        await view.close()
        await reader.dispose()
