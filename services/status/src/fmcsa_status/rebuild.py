"""Replay: fold the whole event stream into a new store beside the live one, then swap it in while
readers keep answering (`fmcsa-status-rebuild`, run by `./fmcsa rebuild-status`), or compare it with
the live store and print every difference (`--verify`, exit 1 when there is one).

How the swap stays correct while the projector and the gateway run:
1. The new store (SQLite: a new file beside the live one; PostgreSQL: a schema beside the live one)
   is folded from sequence 1 to the end of the stream with the same `fold` as the projector, with a
   progress line (events/s, ETA). REPLAY: no side effect repeats: nothing is dead-lettered again and
   no metric counts; poison is only counted in the new store, as it was in the live one.
2. It takes the live store's write lock (the projector's next batch waits), reads the live position
   P, folds the new store up to at least P, and swaps inside that lock: SQLite replaces the pointer
   file with rename(2); PostgreSQL locks the readers out (only once the new store's last batch is
   committed: a reader's REPEATABLE READ snapshot is taken before it waits for that lock and must not
   predate that batch, or it would read the new tables one batch behind), renames both schemas and
   drops the old one in one transaction. Readers see the old store or the new one, never a mix, and
   never an older position than before.
3. The projector notices (pointer changed, or its position is not what it wrote), re-reads the new
   store's position and resumes from there: nothing is skipped, nothing folded twice.
The SQLite file retired by a swap is kept until the next rebuild (to roll back by hand: write its
name into `<store>.current`); older generations are deleted.

From a snapshot (`fmcsa_status.snapshot`; the default): step 1 first loads the newest valid snapshot
into the new store and folds only the events after its position; a snapshot of another schema
version, of other tables, corrupt, or past the stream's end is ignored with a log line and the next
older one tried; with none, the whole stream is folded. `--from-scratch` folds the whole stream.

`--verify` builds two stores beside the live one and compares them row by row: the newest valid
snapshot plus the events after it, and a replay of the whole stream, both folded to the stream's end
as it was at the start. With `--from-scratch`, or when no snapshot is valid, it compares the live
store with a replay to the live position instead. Nothing is swapped; both stores are deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import stamina
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from fmcsa_events.consume import OrderedFollower
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_runtime.cli import settings_help
from fmcsa_runtime.logging import configure_logging
from fmcsa_runtime.service import connect_nats, declare_bus
from fmcsa_status.app import tune_garbage_collector
from fmcsa_status.settings import Settings
from fmcsa_status.snapshot import Restored, restore_newest
from fmcsa_status.store import Applied, StatusStore, dump_rows, is_lock_timeout, primary_key
from fmcsa_status_view.codec import codec_for
from fmcsa_status_view.database import Database, Session, open_database
from fmcsa_status_view.location import Location
from fmcsa_status_view.tables import TABLES

log = structlog.get_logger(__name__)

MAX_SHOWN = 50


@dataclass
class Outcome:
    """What a rebuild did: the position it reached, the messages folded (and refused as poison), the
    differences it found (`--verify`), and whether it swapped the new store in.
    """

    position: int = 0
    events: int = 0
    rejected: int = 0
    seconds: float = 0.0
    swapped: bool = False
    differences: list[str] = field(default_factory=list)
    different_rows: int = 0
    snapshot: str | None = None  # the snapshot the new store started from (None: from scratch)
    snapshot_position: int = 0
    restore_seconds: float = 0.0  # of `seconds`: loading the snapshot
    ignored: list[tuple[str, str]] = field(default_factory=list)  # snapshots passed over: (name, reason)

    @property
    def rate(self) -> float:
        """Events folded per second of folding (the snapshot's load not counted)."""
        folding = self.seconds - self.restore_seconds
        return self.events / folding if folding > 0 else 0.0

    def restored(self, restored: Restored, seconds: float) -> None:
        self.snapshot, self.snapshot_position = restored.name, restored.position
        self.position, self.restore_seconds, self.ignored = restored.position, seconds, restored.ignored


class Progress:
    """One line of progress: events folded, percent, events/s and ETA; redrawn on a terminal, printed
    every few seconds otherwise.
    """

    def __init__(self, out: TextIO, total: int, *, every_s: float | None = None) -> None:
        self._out = out
        self._total = max(total, 1)
        self._tty = out.isatty()
        self._every_s = every_s if every_s is not None else (0.25 if self._tty else 5.0)
        self._started = time.monotonic()
        self._shown = 0.0

    def show(self, done: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._shown < self._every_s:
            return
        self._shown = now
        elapsed = max(now - self._started, 1e-9)
        rate = done / elapsed
        left = max(self._total - done, 0)
        eta = f"{int(left / rate) // 60}:{int(left / rate) % 60:02d}" if rate > 0 and not final else "0:00"
        share = min(100.0, 100.0 * done / self._total)
        line = (
            f"rebuild-status {done:,}/{self._total:,} events {share:5.1f}%  {rate:,.0f} events/s  ETA {eta}"
        )
        self._out.write(("\r" + line + ("\n" if final else "")) if self._tty else line + "\n")
        self._out.flush()


async def rebuild(
    settings: Settings,
    *,
    verify: bool = False,
    from_scratch: bool = False,
    out: TextIO | None = None,
    report: TextIO | None = None,
    nc: NatsClient | None = None,
) -> Outcome:
    """Rebuild the status store from the newest valid snapshot and the stream after it (`from_scratch`:
    from the whole stream) and swap it in, or with `verify` compare instead (see the module docstring).
    Progress goes to `out` (stderr), the differences `--verify` found to `report` (stdout).
    """
    out = out or sys.stderr
    report = report or sys.stdout
    own_nc = nc is None
    nc = nc or await connect_nats(settings, name="status-rebuild")
    try:
        js = nc.jetstream()
        await declare_bus(nc, settings.topology())
        live = await StatusStore.connect(settings.resolved_database_url())
        try:
            if verify and not from_scratch:
                checked = await _verify_snapshot(settings, js, live, out=out, report=report)
                if checked is not None:
                    return checked
            return await _rebuild(
                settings, js, live, verify=verify, from_scratch=from_scratch, out=out, report=report
            )
        finally:
            await live.close()
    finally:
        if own_nc:
            await nc.drain()


async def _rebuild(
    settings: Settings,
    js: JetStreamContext,
    live: StatusStore,
    *,
    verify: bool,
    from_scratch: bool,
    out: TextIO,
    report: TextIO,
) -> Outcome:
    location = Location(live.url)
    target = _Target.beside(location, purpose="verify" if verify else "rebuild")
    await target.prepare()
    outcome = Outcome()
    started = time.monotonic()
    new: StatusStore | None = None
    try:
        goal = await live.position() if verify else (await js.stream_info(EVENTS_STREAM)).state.last_seq
        if not verify and not from_scratch:
            outcome.restored(await _restore(settings, js, target, goal), time.monotonic() - started)
        # a new file nobody reads before the swap: the throwaway settings and indexes at the end
        new = await StatusStore.connect(target.url, follow_pointer=False, bulk=True)
        progress = Progress(out, goal - outcome.position)
        start = outcome.position + 1
        async with OrderedFollower(js, start, high_water=4 * settings.rebuild_batch_size) as feed:
            folder = _Folder(new, feed, settings.rebuild_batch_size, outcome, progress)
            await folder.fold_to(goal)
            if verify:
                await _compare(live, new, folder, outcome, report)
            else:
                await new.finish_bulk()
                await folder.fold_to(
                    (await js.stream_info(EVENTS_STREAM)).state.last_seq
                )  # what came meanwhile
                await _swap(live, new, folder, target)
                outcome.swapped = True
        outcome.seconds = time.monotonic() - started
        progress.show(outcome.events, final=True)
    finally:
        if new is not None:
            await new.close()
        if not outcome.swapped:
            await target.discard()
    if outcome.swapped:
        log.info(
            "status_rebuilt",
            position=outcome.position,
            events=outcome.events,
            rate=round(outcome.rate),
            snapshot=outcome.snapshot,
        )
    return outcome


async def _restore(settings: Settings, js: JetStreamContext, target: _Target, stream_last: int) -> Restored:
    """Load the newest valid snapshot into the prepared `target` (see `fmcsa_status.snapshot`)."""

    async def open_target() -> Database:
        db = open_database(target.url, writer=True)
        await db.create_tables(TABLES)
        return db

    async def reset_target() -> None:
        await target.discard()
        await target.prepare()

    return await restore_newest(
        js, open_target, reset_target, stream_last=stream_last, workdir=settings.data_dir
    )


async def _verify_snapshot(
    settings: Settings, js: JetStreamContext, live: StatusStore, *, out: TextIO, report: TextIO
) -> Outcome | None:
    """`--verify` from a snapshot: the newest valid snapshot plus the events after it against a replay
    of the whole stream, both to the stream's end; None when no snapshot is valid.
    """
    location = Location(live.url)
    goal = int((await js.stream_info(EVENTS_STREAM)).state.last_seq)
    from_snapshot = _Target.beside(location, purpose="snapshot")
    replay = _Target.beside(location, purpose="verify")
    await from_snapshot.prepare()
    outcome, tail = Outcome(), Outcome()
    started = time.monotonic()
    stores: list[StatusStore] = []
    try:
        restored = await _restore(settings, js, from_snapshot, goal)
        if restored.header is None:
            log.info("status_verify_without_snapshot", ignored=len(restored.ignored))
            return None
        tail.restored(restored, time.monotonic() - started)
        outcome.snapshot, outcome.snapshot_position = restored.name, restored.position
        outcome.ignored = restored.ignored
        await replay.prepare()
        stores.append(await StatusStore.connect(from_snapshot.url, follow_pointer=False))
        stores.append(await StatusStore.connect(replay.url, follow_pointer=False, bulk=True))
        batch = settings.rebuild_batch_size
        async with OrderedFollower(js, tail.position + 1, high_water=4 * batch) as feed:
            progress = Progress(out, goal - tail.position)
            await _Folder(stores[0], feed, batch, tail, progress).fold_to(goal)
        async with OrderedFollower(js, 1, high_water=4 * batch) as feed:
            progress = Progress(out, goal)
            await _Folder(stores[1], feed, batch, outcome, progress).fold_to(goal)
            progress.show(outcome.events, final=True)
        for table in TABLES:
            pairs = _differences(table, stores[0].dump(table), stores[1].dump(table), left="snapshot")
            async for line in pairs:
                outcome.different_rows += 1
                if len(outcome.differences) < MAX_SHOWN:
                    outcome.differences.append(line)
        outcome.seconds = time.monotonic() - started
    finally:
        for store in stores:
            await store.close()
        await from_snapshot.discard()
        await replay.discard()
    _report(
        outcome,
        report,
        f"snapshot {restored.name} (at {restored.position}) plus {tail.events} event(s)",
    )
    return outcome


def _report(outcome: Outcome, out: TextIO, compared: str) -> None:
    for line in outcome.differences:
        out.write(line + "\n")
    if outcome.different_rows > len(outcome.differences):
        out.write(f"... and {outcome.different_rows - len(outcome.differences)} more\n")
    count, position = outcome.different_rows, outcome.position
    out.write(f"verify: {count} row(s) differ between the {compared} and a replay to {position}\n")


SWAP_ATTEMPTS = 100
SWAP_WAIT_INITIAL_S = 0.05
SWAP_WAIT_MAX_S = 1.0
"""Tries at the live store's write lock while PostgreSQL's `lock_timeout` runs out on readers: 0.05 s
doubling up to 1 s between them."""


def _waits_for_readers(error: Exception) -> bool:
    return isinstance(error, DBAPIError) and is_lock_timeout(error)


async def _swap(live: StatusStore, new: StatusStore, folder: _Folder, target: _Target) -> None:
    """Inside the live store's write lock: catch up to its position, then swap (see the module
    docstring). PostgreSQL gives way to readers when its locks are not granted at once: retried by
    stamina (one `stamina.retry_scheduled` line per try, `retrying=status_swap`).
    """
    with structlog.contextvars.bound_contextvars(retrying="status_swap"):
        async for attempt in stamina.retry_context(
            on=_waits_for_readers,
            attempts=SWAP_ATTEMPTS,
            timeout=None,
            wait_initial=SWAP_WAIT_INITIAL_S,
            wait_max=SWAP_WAIT_MAX_S,
            wait_jitter=0.0,
        ):
            with attempt:
                async with live.exclusive() as (session, position):
                    await folder.fold_to(position)
                    if (refused := await new.flush()) is not None:
                        raise RuntimeError(f"the new store refused its last batch (at {refused.position})")
                    # risk changes the live projector has not published yet go with the store
                    await new.adopt_outbox(await live.outbox_rows(session))
                    # only now, with every commit of the new store done: see `shut_out_readers`
                    await live.shut_out_readers(session)
                    await target.swap_in(session)


class _Folder:
    """Folds the feed into the new store up to a sequence (never past it)."""

    def __init__(
        self, store: StatusStore, feed: OrderedFollower, batch_size: int, outcome: Outcome, progress: Progress
    ) -> None:
        self._store, self._feed, self._batch_size = store, feed, batch_size
        self._outcome, self._progress = outcome, progress

    async def fold_to(self, goal: int) -> None:
        while self._outcome.position < goal:
            batch = await self._feed.take(self._batch_size, 0.05, until=goal, idle_s=10.0)
            if not batch:
                raise RuntimeError(f"the stream ended at {self._outcome.position}, before sequence {goal}")
            # REPLAY: dead_letter=None, so poison is counted in the store but never dead-lettered again.
            result = await self._store.apply(batch, believed=self._outcome.position, dead_letter=None)
            if not isinstance(result, Applied):
                raise RuntimeError(f"the new store moved by itself (to {result.position})")
            self._outcome.position = result.position
            self._outcome.events += result.events
            self._outcome.rejected += len(result.poison)
            self._progress.show(self._outcome.events)


async def _compare(
    live: StatusStore, new: StatusStore, folder: _Folder, outcome: Outcome, out: TextIO
) -> None:
    """Compare table by table inside one snapshot of the live store, with the new store folded to
    exactly the live position (the projector may move on meanwhile: the snapshot does not).
    """
    location = Location(live.url)
    db = open_database(location.live_url(), writer=False)
    codec = codec_for("sqlite" if location.sqlite else "postgresql")
    try:
        async with db.transaction() as session:
            position = int(await session.scalar("SELECT seq FROM status_position WHERE id = 1") or 0)
            if position < outcome.position:
                raise RuntimeError(f"the live store went back to {position} (swapped?) during --verify")
            await folder.fold_to(position)
            for table in TABLES:
                async for line in _differences(table, dump_rows(session, table, codec), new.dump(table)):
                    outcome.different_rows += 1
                    if len(outcome.differences) < MAX_SHOWN:
                        outcome.differences.append(line)
    finally:
        await db.dispose()
    _report(outcome, out, "live store")


async def _differences(
    table: Any,
    live_rows: AsyncIterator[dict[str, Any]],
    new_rows: AsyncIterator[dict[str, Any]],
    *,
    left: str = "live",
) -> AsyncIterator[str]:
    """Merge two key-ordered row streams; one line per row that differs, is missing or is extra
    (`left` names the first store: the live one, or the one from a snapshot).
    """
    name = table.name
    a = await anext(live_rows, None)
    b = await anext(new_rows, None)
    while a is not None or b is not None:
        ka = primary_key(table, a) if a is not None else None
        kb = primary_key(table, b) if b is not None else None
        if b is None or (a is not None and kb is not None and ka is not None and ka < kb):
            yield f"{name} {ka}: only in the {left} store"
            a = await anext(live_rows, None)
        elif a is None or (ka is not None and kb is not None and kb < ka):
            yield f"{name} {kb}: only in the replay"
            b = await anext(new_rows, None)
        else:
            changed = [f"{c} {left}={a[c]!r} replay={b.get(c)!r}" for c in a if a[c] != b.get(c)]
            if changed:
                yield f"{name} {ka}: " + "; ".join(changed)
            a = await anext(live_rows, None)
            b = await anext(new_rows, None)


@dataclass
class _Target:
    """Where the new store is built, and how it replaces the live one."""

    live: Location
    url: str
    purpose: str = "rebuild"
    sqlite_path: Path | None = None
    schema: str | None = None
    live_schema: str | None = None

    @classmethod
    def beside(cls, live: Location, *, purpose: str) -> _Target:
        if live.sqlite:
            base = live.base_path
            generation = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            path = base.with_name(f"{base.stem}.{purpose[0]}{generation}{base.suffix}")
            return cls(live, f"sqlite:///{path}", purpose, sqlite_path=path)
        return cls(live, live.url, purpose)  # schema filled in by prepare()

    async def prepare(self) -> None:
        if self.sqlite_path is not None:
            for leftover in _sqlite_files(self.sqlite_path):
                leftover.unlink()
            return
        db = open_database(self.live.url, writer=True)
        try:
            async with db.transaction() as session:
                live_schema = str(await session.scalar("SELECT current_schema()"))
                schema = f"{live_schema}_{self.purpose}"[:63]
                await session.execute(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE")
                await session.execute(f"CREATE SCHEMA {_quote(schema)}")
        finally:
            await db.dispose()
        self.live_schema, self.schema = live_schema, schema
        url = make_url(self.live.url)
        self.url = url.update_query_dict({"search_path": schema}).render_as_string(hide_password=False)

    async def swap_in(self, session: Session) -> None:
        """Make the new store the live one; `session` holds the live store's write lock."""
        if self.sqlite_path is not None:
            retired = self.live.live_path()
            _replace_pointer(self.live.pointer_path, self.sqlite_path.name)
            _delete_generations(self.live.base_path, keep={self.sqlite_path, retired})
            return
        assert self.schema is not None, "prepare() names the schema"
        assert self.live_schema is not None, "prepare() names the schema"
        retired_schema = f"{self.live_schema}_retired"[:63]
        live_name, new_name = _quote(self.live_schema), _quote(self.schema)
        retired_name = _quote(retired_schema)
        await session.execute(f"DROP SCHEMA IF EXISTS {retired_name} CASCADE")
        await session.execute(f"ALTER SCHEMA {live_name} RENAME TO {retired_name}")
        await session.execute(f"ALTER SCHEMA {new_name} RENAME TO {live_name}")
        # Dropping it at once makes every cached plan on the old tables re-plan onto the new ones.
        await session.execute(f"DROP SCHEMA {retired_name} CASCADE")

    async def discard(self) -> None:
        if self.sqlite_path is not None:
            for leftover in _sqlite_files(self.sqlite_path):
                leftover.unlink()
            return
        if self.schema is None:
            return
        db = open_database(self.live.url, writer=True)
        try:
            async with db.transaction() as session:
                await session.execute(f"DROP SCHEMA IF EXISTS {_quote(self.schema)} CASCADE")
        finally:
            await db.dispose()


def _replace_pointer(pointer: Path, name: str) -> None:
    """Atomically point at `name`: write a temporary file, fsync it, rename it over the pointer,
    fsync the folder (so the switch survives a crash too).
    """
    temporary = pointer.with_name(pointer.name + ".tmp")
    with open(temporary, "w") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, pointer)
    folder = os.open(pointer.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _sqlite_files(path: Path) -> list[Path]:
    return [
        p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")) if p.exists()
    ]


def _delete_generations(base: Path, *, keep: set[Path]) -> None:
    """Remove stores older than the two kept (the new live one and the one it replaced)."""
    candidates = [base, *base.parent.glob(f"{base.stem}.r*{base.suffix}")]
    for candidate in candidates:
        if candidate.resolve() in {k.resolve() for k in keep}:
            continue
        for path in _sqlite_files(candidate):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def main(argv: Sequence[str] | None = None) -> int:
    """`fmcsa-status-rebuild [--verify] [--from-scratch]`: exit 0 when done (or no difference), 1 on a
    difference.
    """
    parser = argparse.ArgumentParser(
        prog="fmcsa-status-rebuild",
        description="Rebuild the status store from its newest snapshot and the event stream after it (or the"
        " whole stream) and swap it in (or --verify it).",
        epilog=settings_help(Settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="compare the newest snapshot plus the events after it (with --from-scratch, or without a"
        " valid snapshot: the live store) with a replay of the whole stream; do not swap",
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="fold the whole stream; no snapshot (see fmcsa-status-snapshot)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="events per transaction (default: settings)"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.batch_size:
        settings = settings.model_copy(update={"rebuild_batch_size": args.batch_size})
    configure_logging(service="status-rebuild", level=settings.log_level, json=settings.log_json)
    tune_garbage_collector()
    outcome = asyncio.run(rebuild(settings, verify=args.verify, from_scratch=args.from_scratch))
    if args.verify:
        return 1 if outcome.different_rows else 0
    start = (
        f"from snapshot {outcome.snapshot} at {outcome.snapshot_position}, loaded in "
        f"{outcome.restore_seconds:.1f}s"
        if outcome.snapshot
        else "from scratch"
    )
    print(
        f"rebuild-status: swapped in a store at position {outcome.position} "
        f"({outcome.events:,} events in {outcome.seconds:.1f}s, {outcome.rate:,.0f} events/s, "
        f"{outcome.rejected} poison), {start}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
