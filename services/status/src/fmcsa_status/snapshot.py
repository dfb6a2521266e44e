"""Snapshots of the status projection: every table of the view (`fmcsa_status_view.tables.TABLES`) with
the stream position it reflects, saved into the JetStream object store `fmcsa_status_snapshots` (it
needs nothing but the bus and replicates with it). Taken on a schedule by the projector
(FMCSA_STATUS_SNAPSHOT_INTERVAL_S) and on demand (`fmcsa-status-snapshot`, run by
`./fmcsa snapshot-status`); `fmcsa_status.rebuild` starts from the newest valid one and folds only the
events after it.

Format: one object per snapshot, named `status-v<schema version>-<position, 15 digits>-<UTC time>`,
whose body is gzip-compressed JSON lines (UTF-8):
1. the header: `{"format": "fmcsa-status-snapshot", "schema_version": N, "position": P,
   "created_at": "<ISO 8601 UTC>", "tables": {"<table>": ["<column>", ...], ...}}`;
2. for each table of the header, in its order: `{"table": "<table>"}`, then one JSON array per row,
   its values in the header's column order: text and numbers as they are, a DOT as an integer, a time
   as ISO 8601 text in UTC with microseconds (`2026-01-05 00:00:00.000000+00:00`, the SQLite store's own
   form), a flag as true/false, a JSON column as its compact JSON text (a JSON string), NULL as null;
3. the trailer: `{"end": true, "rows": {"<table>": count, ...}, "sha256": "<hex>"}`, the SHA-256 of
   every uncompressed byte before the trailer line.
The rows are neutral: the same file loads into SQLite and PostgreSQL.

Guarantees:
- A snapshot is one read transaction of the live store (SQLite: one WAL read snapshot; PostgreSQL:
  REPEATABLE READ): its rows are exactly the projection at its position, which it reads first.
- Memory stays bounded whatever the store's size: rows are streamed from the store into a compressed
  temporary file (in the data folder), which the object store reads in chunks (128 KiB); a restore
  writes the chunks into a temporary file (their SHA-256 checked by the object store client), then
  streams its lines into the tables, a bounded batch of rows per statement; the secondary indexes are
  dropped before and built once after.
- A snapshot is used only when whole and current: one whose schema version is not `SCHEMA_VERSION`,
  whose tables or columns are not the view's, whose content fails its checksum (or does not parse),
  or whose position is past the end of the stream is ignored with one `status_snapshot_ignored` log
  line (its name and why), and the next older one is tried; with none left the rebuild replays the
  whole stream.
- The newest `keep` snapshots stay in the bucket; older ones are retired after each save: a rollup
  message (`Nats-Rollup: sub`) replaces the old object's chunks, another marks its metadata deleted.
  The status user may not purge a stream (`fmcsa_events.permissions`), so nats-py's own `delete`,
  which purges, is not used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import DigestMismatchError, NotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_META_PRE_TEMPLATE, ObjectStore
from sqlalchemy import JSON, Boolean, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex

from fmcsa_events.topology import STATUS_SNAPSHOTS_BUCKET
from fmcsa_runtime.cli import settings_help
from fmcsa_runtime.logging import configure_logging
from fmcsa_runtime.service import connect_nats, declare_bus
from fmcsa_status.settings import Settings
from fmcsa_status_view.codec import SQLITE, Codec, codec_for
from fmcsa_status_view.database import Database, Session, open_database
from fmcsa_status_view.location import Location
from fmcsa_status_view.tables import SCHEMA_VERSION, TABLES, UtcDateTime, columns

log = structlog.get_logger(__name__)

FORMAT = "fmcsa-status-snapshot"
NAME = re.compile(r"status-v(?P<version>\d+)-(?P<position>\d{15})-(?P<created>\d{8}T\d{12}Z)")
ROWS_PER_STATEMENT = 1_000
ROWS_PER_TRANSACTION = 100_000
"""A restore commits every so many rows: the store it fills is thrown away if anything fails."""
YIELD_EVERY_ROWS = 2_000
"""A snapshot taken inside the projector lets it run this often (SQLite reads in the calling thread)."""
GET_TIMEOUT_S = 3600.0


class Unusable(Exception):
    """A snapshot that must not be restored; `reason` says why (a word for the log line)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Header:
    schema_version: int
    position: int
    created_at: datetime
    tables: dict[str, list[str]]


@dataclass(frozen=True)
class Saved:
    """A snapshot put into the bucket."""

    name: str
    position: int
    rows: int
    size: int
    seconds: float


@dataclass(frozen=True)
class Listed:
    """A snapshot found in the bucket, by its name."""

    name: str
    schema_version: int
    position: int
    created: str


@dataclass
class Restored:
    """What a restore did: the snapshot it loaded (None: none valid) and the ones it ignored."""

    header: Header | None = None
    name: str | None = None
    rows: int = 0
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)

    @property
    def position(self) -> int:
        return self.header.position if self.header is not None else 0


def snapshot_name(schema_version: int, position: int, created_at: datetime) -> str:
    return f"status-v{schema_version}-{position:015d}-{created_at.strftime('%Y%m%dT%H%M%S%f')}Z"


def _parse_name(name: str) -> Listed | None:
    match = NAME.fullmatch(name)
    if match is None:
        return None
    return Listed(name, int(match["version"]), int(match["position"]), match["created"])


# --- rows to and from the neutral form -------------------------------------------------------------


Converters = list[tuple[int, Callable[[Any], Any]]]
"""(column index, conversion) for the columns whose value changes between a store and the snapshot."""


def _to_neutral(table: Table, codec: Codec) -> Converters:
    """SQLite already keeps times and JSON in the neutral form (`fmcsa_status_view.codec`), but for
    flags and JSON numbers; PostgreSQL's times and JSON values are written as that text.
    """
    converters: Converters = []
    for i, column in enumerate(table.columns):
        if isinstance(column.type, Boolean):
            converters.append((i, Codec.bool_in))
        elif isinstance(column.type, JSON):
            converters.append((i, _sqlite_json if codec.sqlite else Codec.json_out))
        elif isinstance(column.type, UtcDateTime) and not codec.sqlite:
            converters.append((i, SQLITE.time_out))
    return converters


def _sqlite_json(value: Any) -> Any:
    """SQLite's JSON text, except a number: a JSON column has numeric affinity, so SQLite keeps the
    text `60` as the integer 60.
    """
    return value if value is None or isinstance(value, str) else Codec.json_out(value)


def _from_neutral(table: Table, codec: Codec) -> Converters:
    """SQLite takes the neutral text as it is; PostgreSQL takes a time as a datetime (JSON as text)."""

    def time(value: Any) -> Any:
        return None if value is None else codec.time_out(datetime.fromisoformat(value))

    converters: Converters = []
    for i, column in enumerate(table.columns):
        if isinstance(column.type, UtcDateTime) and not codec.sqlite:
            converters.append((i, time))
    return converters


def _convert(row: Sequence[Any], converters: Converters) -> list[Any]:
    values = list(row)
    for i, convert in converters:
        values[i] = convert(values[i])
    return values


# --- writing ---------------------------------------------------------------------------------------


class _Writer:
    """JSON lines into a gzip stream, hashing every uncompressed byte."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._gzip = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1)
        self._hash = hashlib.sha256()
        self._encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def line(self, value: Any) -> None:
        data = (self._encode(value) + "\n").encode()
        self._hash.update(data)
        self._gzip.write(data)

    def close(self, trailer: dict[str, Any]) -> None:
        self._gzip.write((self._encode({**trailer, "sha256": self._hash.hexdigest()}) + "\n").encode())
        self._gzip.close()


async def write_snapshot(
    db: Database, sink: IO[bytes], *, schema_version: int = SCHEMA_VERSION, tables: Sequence[Table] = TABLES
) -> tuple[Header, int]:
    """Write every table of the store `db` (opened for reading) into `sink` in one read transaction;
    returns the header and the number of rows.
    """
    codec = codec_for("sqlite" if db.sqlite else "postgresql")
    writer = _Writer(sink)
    counts: dict[str, int] = {}
    async with db.transaction() as session:
        position = int(await session.scalar("SELECT seq FROM status_position WHERE id = 1") or 0)
        header = Header(
            schema_version=schema_version,
            position=position,
            created_at=datetime.now(UTC),
            tables={table.name: list(columns(table)) for table in tables},
        )
        writer.line(
            {
                "format": FORMAT,
                "schema_version": header.schema_version,
                "position": header.position,
                "created_at": header.created_at.isoformat(),
                "tables": header.tables,
            }
        )
        for table in tables:
            counts[table.name] = await _write_table(session, table, codec, writer)
    writer.close({"end": True, "rows": counts})
    return header, sum(counts.values())


async def _write_table(session: Session, table: Table, codec: Codec, writer: _Writer) -> int:
    writer.line({"table": table.name})
    converters = _to_neutral(table, codec)
    count = 0
    async for row in session.stream(f"SELECT {', '.join(columns(table))} FROM {table.name}"):
        writer.line(_convert(row, converters))
        count += 1
        if count % YIELD_EVERY_ROWS == 0:
            await asyncio.sleep(0)  # let the projector's loop run between slices of a long read
    return count


async def bucket(js: JetStreamContext) -> ObjectStore:
    return await js.object_store(STATUS_SNAPSHOTS_BUCKET)


async def take_snapshot(
    js: JetStreamContext,
    url: str,
    *,
    workdir: Path,
    keep: int = 3,
    schema_version: int = SCHEMA_VERSION,
) -> Saved:
    """Snapshot the live status store at `url` into the bucket, then retire all but the newest `keep`."""
    started = time.monotonic()
    os.makedirs(workdir, exist_ok=True)
    db = open_database(Location(url).live_url(), writer=False)
    try:
        with tempfile.TemporaryFile(dir=workdir, prefix="status-snapshot-") as spool:
            header, rows = await write_snapshot(db, spool, schema_version=schema_version)
            size = spool.tell()
            spool.seek(0)
            name = snapshot_name(header.schema_version, header.position, header.created_at)
            store = await bucket(js)
            await store.put(name, spool)
    finally:
        await db.dispose()
    saved = Saved(name, header.position, rows, size, time.monotonic() - started)
    log.info("status_snapshot_saved", name=name, position=header.position, rows=rows, bytes=size)
    await retire(js, keep=keep)
    return saved


async def list_snapshots(js: JetStreamContext) -> list[Listed]:
    """Every snapshot in the bucket, newest position first (then newest time)."""
    store = await bucket(js)
    try:
        infos = await store.list(ignore_deletes=True)
    except NotFoundError:
        return []
    listed = []
    for info in infos:
        parsed = _parse_name(info.name or "")
        if parsed is None:
            log.warning("status_snapshot_ignored", name=info.name, reason="name")
            continue
        listed.append(parsed)
    return sorted(listed, key=lambda s: (s.position, s.created), reverse=True)


async def retire(js: JetStreamContext, *, keep: int) -> list[str]:
    """Retire every snapshot but the newest `keep` (see the module docstring); returns their names."""
    store = await bucket(js)
    retired = []
    for old in (await list_snapshots(js))[keep:]:
        info = await store.get_info(old.name)
        chunks = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=STATUS_SNAPSHOTS_BUCKET, obj=info.nuid)
        await js.publish(chunks, b"", headers={"Nats-Rollup": "sub"})
        info.deleted, info.size, info.chunks, info.digest = True, 0, 0, ""
        meta = OBJ_META_PRE_TEMPLATE.format(
            bucket=STATUS_SNAPSHOTS_BUCKET, obj=base64.urlsafe_b64encode(old.name.encode()).decode()
        )
        await js.publish(meta, json.dumps(info.as_dict()).encode(), headers={"Nats-Rollup": "sub"})
        retired.append(old.name)
        log.info("status_snapshot_retired", name=old.name, position=old.position)
    return retired


# --- restoring -------------------------------------------------------------------------------------


class _Reader:
    """The lines of a snapshot, hashed as they are read; `trailer()` checks the end."""

    def __init__(self, source: IO[bytes]) -> None:
        self._lines: Iterator[bytes] = iter(gzip.GzipFile(fileobj=source, mode="rb"))
        self._hash = hashlib.sha256()
        self._decode = json.JSONDecoder().decode

    def next(self) -> Any:
        try:
            raw = next(self._lines)
        except StopIteration:
            raise Unusable("truncated", "the snapshot ends before its trailer") from None
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            raise Unusable("corrupt", f"not a readable gzip stream: {error}") from None
        try:
            value = self._decode(raw.decode())
        except ValueError as error:  # UnicodeDecodeError too
            raise Unusable("corrupt", f"a line is not JSON: {error}") from None
        if not (isinstance(value, dict) and value.get("end") is True):
            self._hash.update(raw)
        return value

    def digest(self) -> str:
        return self._hash.hexdigest()


def read_header(reader: _Reader) -> Header:
    first = reader.next()
    if not isinstance(first, dict) or first.get("format") != FORMAT:
        raise Unusable("corrupt", "no snapshot header")
    try:
        return Header(
            schema_version=int(first["schema_version"]),
            position=int(first["position"]),
            created_at=datetime.fromisoformat(first["created_at"]),
            tables={str(k): [str(c) for c in v] for k, v in first["tables"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise Unusable("corrupt", f"a bad header: {error!r}") from None


def check_header(header: Header, *, stream_last: int | None) -> None:
    """Raise `Unusable` unless the snapshot fits this code and this stream."""
    if header.schema_version != SCHEMA_VERSION:
        raise Unusable("schema_version", f"{header.schema_version}, this code's is {SCHEMA_VERSION}")
    mine = {table.name: list(columns(table)) for table in TABLES}
    if header.tables != mine:
        raise Unusable("tables", "its tables or columns are not the view's")
    if stream_last is not None and header.position > stream_last:
        raise Unusable("ahead", f"position {header.position} is past the stream's end {stream_last}")


async def load_snapshot(
    source: IO[bytes], db: Database, *, stream_last: int | None = None
) -> tuple[Header, int]:
    """Fill the empty store `db` (opened for writing, tables created) from a snapshot; returns its
    header and the rows loaded. Raises `Unusable` (the store then holds part of it: throw it away).
    """
    codec = codec_for("sqlite" if db.sqlite else "postgresql")
    by_name = {table.name: table for table in TABLES}
    reader = _Reader(source)
    header = read_header(reader)
    check_header(header, stream_last=stream_last)
    counts: dict[str, int] = {}
    await _drop_indexes(db)
    line = reader.next()
    while not (isinstance(line, dict) and line.get("end") is True):
        if not isinstance(line, dict) or line.get("table") not in by_name or line["table"] in counts:
            raise Unusable("corrupt", "a table's rows start without its name")
        table = by_name[line["table"]]
        counts[table.name], line = await _load_table(reader, db, table, codec)
    if line.get("sha256") != reader.digest():
        raise Unusable("checksum", "the content's SHA-256 is not the one the trailer holds")
    if line.get("rows") != counts or set(counts) != set(header.tables):
        raise Unusable("corrupt", "the row counts are not the trailer's")
    await _create_indexes(db)
    return header, sum(counts.values())


async def _drop_indexes(db: Database) -> None:
    """Drop the secondary indexes of the empty store: built once after the load, not row by row."""
    async with db.transaction() as session:
        for table in TABLES:
            for index in table.indexes:
                await session.execute(f"DROP INDEX IF EXISTS {index.name}")


async def _create_indexes(db: Database) -> None:
    dialect: Dialect = sqlite.dialect() if db.sqlite else postgresql.dialect()  # type: ignore[no-untyped-call]
    async with db.transaction() as session:
        for table in TABLES:
            for index in table.indexes:
                await session.execute(str(CreateIndex(index).compile(dialect=dialect)))


async def _load_table(reader: _Reader, db: Database, table: Table, codec: Codec) -> tuple[int, Any]:
    """Insert one table's rows; returns their count and the line after them."""
    width = len(table.columns)
    insert = f"INSERT INTO {table.name} ({', '.join(columns(table))}) VALUES ({', '.join('?' * width)})"
    converters = _from_neutral(table, codec)
    count = 0
    line = reader.next()
    async with db.transaction() as session:
        await session.execute(f"DELETE FROM {table.name}")
    while isinstance(line, list):
        async with db.transaction() as session:
            batch: list[list[Any]] = []
            done = 0
            while isinstance(line, list) and done < ROWS_PER_TRANSACTION:
                if len(line) != width:
                    raise Unusable("corrupt", f"a row of {table.name} has {len(line)} values, not {width}")
                batch.append(_convert(line, converters))
                done += 1
                if len(batch) == ROWS_PER_STATEMENT:
                    await session.execute_many(insert, batch)
                    batch = []
                line = reader.next()
            if batch:
                await session.execute_many(insert, batch)
        count += done
    return count, line


async def download(js: JetStreamContext, name: str, into: IO[bytes]) -> None:
    """Write a snapshot's bytes into `into` (chunk by chunk); `Unusable` when its digest fails."""
    store = await bucket(js)
    try:
        async with asyncio.timeout(GET_TIMEOUT_S):
            await store.get(name, writeinto=into)  # type: ignore[arg-type]  # a binary file
    except DigestMismatchError:
        raise Unusable("checksum", "its chunks do not match the object store's digest") from None
    into.flush()
    into.seek(0)


def _ignored(restored: Restored, name: str, error: Unusable) -> None:
    restored.ignored.append((name, error.reason))
    log.warning("status_snapshot_ignored", name=name, reason=error.reason, detail=error.detail)


async def restore_newest(
    js: JetStreamContext,
    open_target: Callable[[], Any],
    reset_target: Callable[[], Any],
    *,
    stream_last: int,
    workdir: Path,
) -> Restored:
    """Load the newest valid snapshot into a fresh store: `open_target()` gives it (a `Database`,
    tables created), `reset_target()` empties it again after a snapshot that failed midway.
    """
    restored = Restored()
    os.makedirs(workdir, exist_ok=True)
    for candidate in await list_snapshots(js):
        if candidate.schema_version != SCHEMA_VERSION:
            _ignored(restored, candidate.name, Unusable("schema_version", f"v{candidate.schema_version}"))
            continue
        if candidate.position > stream_last:
            _ignored(restored, candidate.name, Unusable("ahead", f"past the stream's end {stream_last}"))
            continue
        db: Database = await open_target()
        try:
            with tempfile.TemporaryFile(dir=workdir, prefix="status-restore-") as spool:
                await download(js, candidate.name, spool)
                header, rows = await load_snapshot(spool, db, stream_last=stream_last)
        except Unusable as error:
            await db.dispose()
            _ignored(restored, candidate.name, error)
            await reset_target()
            continue
        except BaseException:
            await db.dispose()
            raise
        await db.dispose()
        restored.header, restored.name, restored.rows = header, candidate.name, rows
        log.info("status_snapshot_restored", name=candidate.name, position=header.position, rows=rows)
        return restored
    return restored


# --- the command -----------------------------------------------------------------------------------


async def snapshot_now(settings: Settings, *, nc: NatsClient | None = None) -> Saved:
    """Take one snapshot of the live store now (`fmcsa-status-snapshot`)."""
    own_nc = nc is None
    nc = nc or await connect_nats(settings, name="status-snapshot")
    try:
        await declare_bus(nc, settings.topology())
        return await take_snapshot(
            nc.jetstream(),
            settings.resolved_database_url(),
            workdir=settings.data_dir,
            keep=settings.snapshot_keep,
        )
    finally:
        if own_nc:
            await nc.drain()


def main(argv: Sequence[str] | None = None) -> int:
    """`fmcsa-status-snapshot`: save a snapshot of the live status store into the bucket."""
    parser = argparse.ArgumentParser(
        prog="fmcsa-status-snapshot",
        description="Save a snapshot of the status store (with its stream position) into the bus.",
        epilog=settings_help(Settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    settings = Settings()
    configure_logging(service="status-snapshot", level=settings.log_level, json=settings.log_json)
    saved = asyncio.run(snapshot_now(settings))
    print(
        f"snapshot-status: saved {saved.name} at position {saved.position} "
        f"({saved.rows:,} rows, {saved.size:,} bytes in {saved.seconds:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
