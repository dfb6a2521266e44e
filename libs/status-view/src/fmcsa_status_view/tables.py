"""The status projection's tables. Only the projector (fmcsa_status) writes them; the gateway reads
them through `fmcsa_status_view.query.StatusView`.

All times are UTC. DOT numbers are stored as integers (compact, and lists sort numerically); request
ids as their canonical text. `status_position` holds the one stream sequence the projection has
applied, written in the same transaction as the rows it changed (style.md 2.8). `status_change`
(the change feed) and `status_history` (series by upstream as-of) are folded from
`CarrierDataChanged` and `SourceSynced` in the same transactions.

A table whose row is a class of `fmcsa_status_view.rows` is derived from it (`row_table`): the row
class spells the columns, this module only their storage details (lengths, keys, indexes).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Index, Integer, String, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

from fmcsa_status_view.rows import (
    CarrierRow,
    ChangeRow,
    CompanyRow,
    HistoryRow,
    SourceRow,
    SyncLogRow,
    TotalsRow,
    ViolationPageRow,
    ViolationRow,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (text) and PostgreSQL (timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StatusPosition(SQLModel, table=True):
    """The applied position: the last FMCSA_EVENTS sequence folded, with counts of events and rejects."""

    __tablename__ = "status_position"
    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0, sa_type=BigInteger)
    events: int = Field(default=0, sa_type=BigInteger)
    rejected: int = Field(default=0, sa_type=BigInteger)


class StatusDaily(SQLModel, table=True):
    """Outcomes per UTC day (`YYYY-MM-DD`) and source, for the summary chart."""

    __tablename__ = "status_daily"
    day: str = Field(primary_key=True, max_length=10)
    source: str = Field(primary_key=True, max_length=16)
    succeeded: int = Field(default=0, sa_type=BigInteger)
    failed: int = Field(default=0, sa_type=BigInteger)


class StatusRiskOutbox(SQLModel, table=True):
    """A risk change the live projector folded and has not published yet (`fmcsa_status.publisher`):
    the `CarrierDataChanged` as JSON, by its deterministic event id, in stream order (`position`: the
    batch's last sequence, then `ordinal` within it). Not a projection table (not in `TABLES`): a rebuild
    writes none, `--verify` and snapshots ignore it.
    """

    __tablename__ = "status_risk_outbox"
    event_id: str = Field(primary_key=True, max_length=200)
    position: int = Field(sa_type=BigInteger)
    ordinal: int = Field(default=0)
    payload: str


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel for table=True classes
    assert isinstance(table, Table)
    return table


def row_table(
    name: str,
    row: type[Any],
    *indexes: Index,
    key: tuple[str, ...],
    lengths: Mapping[str, int] | None = None,
    big: frozenset[str] = frozenset(),
    unique: frozenset[str] = frozenset(),
    extra: tuple[Column[Any], ...] = (),
    **kwargs: Any,
) -> Table:
    """The table of a row class (`fmcsa_status_view.rows`): a column per field, in field order, then
    the `extra` columns (values a property of the row gives). A column's type follows the field's
    annotation (text, with its `lengths`; an integer, BIGINT if `big`; a flag; an aware UTC time; a
    JSON value), NULL allowed where the annotation allows None (`Any` does); a `dot` field is an
    INTEGER.
    """
    hints = get_type_hints(row)
    columns: list[Column[Any]] = []
    for f in fields(row):
        kind, optional = _unwrap(hints[f.name])
        sql: TypeEngine[Any]
        if f.name == "dot" or (kind is int and f.name not in big):
            sql = Integer()
        elif kind is bool:
            sql = Boolean()
        elif kind is int:
            sql = BigInteger()
        elif kind is datetime:
            sql = UtcDateTime()
        elif isinstance(kind, type) and issubclass(kind, str):
            sql = String((lengths or {}).get(f.name))
        else:  # a dict or any JSON value
            sql = JSON()
        primary = f.name in key
        # an integer key is the value given (no SERIAL)
        auto: Literal["auto"] | bool = False if primary and isinstance(sql, Integer) else "auto"
        column = Column(
            f.name,
            sql,
            primary_key=primary,
            nullable=optional and not primary,
            autoincrement=auto,
            unique=f.name in unique or None,
        )
        columns.append(column)
    return Table(name, SQLModel.metadata, *columns, *extra, *indexes, **kwargs)


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """`(the type, whether None is allowed)` of an annotation such as `int | None`."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else Any), len(args) < len(get_args(hint))
    return (get_origin(hint) or hint), hint is Any


POSITION = _table(StatusPosition)
COMPANY = row_table(
    "status_company",
    CompanyRow,
    Index("ix_status_company_failing", "active", "failing", "dot"),
    Index("ix_status_company_never_synced", "active", "never_synced", "dot"),
    key=("dot",),
)
"""One row per company (DOT) seen in any event (`CompanyRow`): what changes rarely (lifecycle and
flags); its last run and last success are the newest of its `status_source` rows, so most outcomes
write no company row at all."""
SOURCE = row_table(
    "status_source",
    SourceRow,
    Index("ix_status_source_failing", "source", "failing", "dot"),
    key=("dot", "source"),
    lengths={"source": 16, "state": 16},
    big=frozenset({"success_duration_ms"}),
)
"""One row per (company, source) ever requested (`SourceRow`): newest request, success, failure."""
SYNC_LOG = row_table(
    "status_sync_log",
    SyncLogRow,
    Index("ix_status_sync_log_sort", "sort_at", "request_id"),
    Index("ix_status_sync_log_dot", "dot", "sort_at", "request_id"),
    # Only failures: the list people look for, at a fraction of an index on every status.
    Index(
        "ix_status_sync_log_failed",
        "sort_at",
        "request_id",
        sqlite_where=text("status = 'failed'"),
        postgresql_where=text("status = 'failed'"),
    ),
    key=("request_id",),
    lengths={"request_id": 36, "source": 16, "status": 16, "retry_kind": 32},
    big=frozenset({"duration_ms"}),
    # the log's order: requested time, or finish time while the request is not known yet
    extra=(Column("sort_at", UtcDateTime(), nullable=False),),
)
"""One row per request id (`SyncLogRow`), newest first by `(sort_at, request_id)`."""
DAILY = _table(StatusDaily)
TOTALS = row_table(
    "status_totals",
    TotalsRow,
    key=("scope",),
    lengths={"scope": 16},
    big=frozenset({"companies", "failing", "never_synced", "requests", "succeeded", "failed"}),
)
"""Counters per scope (`TotalsRow`), kept as increments by the projector. Scope `all`: `companies`,
`failing`, `never_synced` count active companies; a source scope: that source's (company, source)
rows."""
CHANGE = row_table(
    "status_change",
    ChangeRow,
    Index("ix_status_change_dot", "dot", "position"),
    Index("ix_status_change_kind", "kind", "position"),
    Index("ix_status_change_observed", "observed_at"),
    key=("position",),
    lengths={"request_id": 36, "source": 16, "kind": 40, "subject": 80},
    big=frozenset({"position"}),
    unique=frozenset({"event_id"}),
)
"""The change feed: one row per `CarrierDataChanged` (`ChangeRow`), unique by its event id."""
HISTORY = row_table(
    "status_history",
    HistoryRow,
    key=("dot", "source", "subject", "as_of"),
    lengths={"source": 16, "subject": 80, "request_id": 36},
    # SQLite: the key is the table (one B-tree, not a rowid table plus a key index): half the writes.
    sqlite_with_rowid=False,
)
"""History series (`HistoryRow`): one point per (DOT, source, subject, upstream as-of), from each
`SourceSynced` summary (`fmcsa_status.domain.feed` lists the subjects and values per source).
`figures` maps a value's name to a number or null (withheld upstream, never 0). A repeated as-of
overwrites the point when its observation (`observed_at`, then `request_id`) is newer."""

CARRIER = row_table(
    "status_carrier",
    CarrierRow,
    Index("ix_status_carrier_name", "name_key", "dot"),
    Index("ix_status_carrier_risk", "risk", "dot"),
    key=("dot",),
    lengths={"risk": 16},
)
"""The carrier record (`CarrierRow`): one row per DOT with a successful fetch of any source, derived from
each source's newest summary; rewritten whenever a source's newest success changes."""
VIOLATION = row_table(
    "status_violation",
    ViolationRow,
    Index("ix_status_violation_date", "dot", "inspected_on"),
    key=("dot", "seq"),
    lengths={"inspected_on": 10, "basic": 40},
)
"""A carrier's violation rows (`ViolationRow`), as the violations source's newest success lists them
(its summary's rows, then the rows of its `ViolationsListed` pages at their offsets); replaced as a
whole when that success changes, a page of it that is folded late added to them."""
VIOLATION_PAGE = row_table(
    "status_violation_page",
    ViolationPageRow,
    key=("request_id", "first_seq"),
    lengths={"request_id": 36},
)
"""Pages of violation rows (`ViolationPageRow`) waiting for their request's outcome; a page is deleted
when that outcome is folded (its rows taken into `status_violation` or dropped)."""

TABLES: tuple[Table, ...] = (
    POSITION,
    COMPANY,
    SOURCE,
    SYNC_LOG,
    DAILY,
    TOTALS,
    CHANGE,
    HISTORY,
    CARRIER,
    VIOLATION,
    VIOLATION_PAGE,
)
"""Every table of the projection, in creation order; `SQLModel.metadata.create_all(tables=TABLES)`.
A snapshot (`fmcsa_status.snapshot`) holds every table listed here: a new table is in the next one."""

RISK_OUTBOX = _table(StatusRiskOutbox)
"""The live projector's outbox of risk changes (`StatusRiskOutbox`): created beside `TABLES`, not in them."""

SCHEMA_VERSION = 1
"""The version of what the tables mean. Raise it when a change of the fold or of a table makes rows
written before it wrong for the code after it (a new column that may stay empty does not): a snapshot
(`fmcsa_status.snapshot`) of another version is ignored, and a rebuild replays the whole stream. A
snapshot whose tables or columns differ from `TABLES` is ignored too, version or not."""


def columns(table: Table) -> tuple[str, ...]:
    """The column names of a table, in declaration order (the order rows are written and read in)."""
    return tuple(c.name for c in table.columns)
