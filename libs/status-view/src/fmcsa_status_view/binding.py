"""How a row class (`fmcsa_status_view.rows`) maps onto its table: column order, the conversions of
its values to and from each database (`codec`), and its statements. The projector writes rows and
`StatusView` reads them through the same binding, so both see one spelling of each row.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from dataclasses import fields
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import JSON, Boolean, Column, Table

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.codec import Codec, sqlite_texts
from fmcsa_status_view.models import SyncState
from fmcsa_status_view.tables import DAILY, TOTALS, UtcDateTime, columns

E = TypeVar("E", bound=Enum)


class RowBinding:
    """One row class on one table: `encode` a row into driver values in column order (the table's
    extra columns come from the row's properties), `decode` one selected by `select` back.
    """

    def __init__(self, table: Table, cls: type[Any], codec: Codec, key: tuple[str, ...]) -> None:
        self.table = table
        self.cls = cls
        self.columns = columns(table)
        self.names = tuple(f.name for f in fields(cls))
        assert set(self.names) <= set(self.columns), f"{cls.__name__} has fields {table.name} lacks"
        by_name = {c.name: c for c in table.columns}
        outs = [(i, encoder(by_name[c], codec)) for i, c in enumerate(self.columns)]
        ins = [(i, decoder(by_name[c], codec)) for i, c in enumerate(self.names)]
        self._out = [(i, f) for i, f in outs if f is not None]
        self._in = [(i, f) for i, f in ins if f is not None]
        self.encode: Callable[[Any], tuple[Any, ...]] = _compile_encoder(self.columns, dict(self._out), codec)
        """A row's driver values in column order."""
        self._head = f"INSERT INTO {table.name} ({', '.join(self.columns)}) VALUES "
        updates = ", ".join(f"{c} = excluded.{c}" for c in self.columns if c not in key)
        self._on_conflict = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        self.upsert = self.insert(1, self._on_conflict)
        self.select = f"SELECT {', '.join(self.names)} FROM {table.name}"
        self.decode = self.reader()

    def reader(self, start: int = 0, cls: type[Any] | None = None) -> Callable[..., Any]:
        """What builds a row of `cls` (default: the row class) from a selected row whose columns
        `start...` are `names`, in one call: `read(row, *more)` passes `more` after the decoded values
        (a subclass's extra fields). The same values as `values`, without its loop over the columns.
        """
        env: dict[str, Any] = {"cls": cls or self.cls}
        decoders = dict(self._in)
        args = []
        for i in range(len(self.names)):
            if i in decoders:
                env[f"d{i}"] = decoders[i]
                args.append(f"d{i}(row[{start + i}])")
            else:
                args.append(f"row[{start + i}]")
        # generated once per binding (as dataclasses generates __init__): names and indexes only
        exec(f"def read(row, *more):\n    return cls({', '.join(args)}, *more)\n", env)
        read: Callable[..., Any] = env["read"]
        return read

    def insert(self, count: int, tail: str) -> str:
        """An INSERT of `count` rows in one statement, then `tail` (its ON CONFLICT clause)."""
        row = "(" + ", ".join("?" * len(self.columns)) + ")"
        return self._head + ", ".join([row] * count) + tail

    def values(self, row: Sequence[Any]) -> list[Any]:
        """A selected row's values as the row class takes them, in field order."""
        values = list(row)
        for i, read in self._in:
            values[i] = read(values[i])
        return values


def _compile_encoder(
    columns: Sequence[str], outs: dict[int, Callable[[Any], Any]], codec: Codec
) -> Callable[[Any], tuple[Any, ...]]:
    """`RowBinding.encode` as one function of the row class: `(out0(v.a), v.b, ...)` with no list, loop
    or attrgetter per row (its rows are most of what the projector writes; the loop was 4% of a
    rebuild). A SQLite time column first looks its text up in the codec's cache of texts. The
    column names are the table's own (identifiers, asserted), never data.
    """
    names: dict[str, Any] = {"_TEXTS": sqlite_texts()}
    parts = []
    for i, column in enumerate(columns):
        assert column.isidentifier(), column
        assert not keyword.iskeyword(column), column
        out = outs.get(i)
        if out is None:
            parts.append(f"v.{column}")
            continue
        names[f"_out{i}"] = out
        if codec.sqlite and out == codec.time_out:  # a cached text, or None for a None time
            parts.append(f"(_TEXTS.get(v.{column}) or _out{i}(v.{column}))")
        else:
            parts.append(f"_out{i}(v.{column})")
    source = f"def encode(v):\n    return ({', '.join(parts)},)\n"
    exec(compile(source, "<RowBinding.encode>", "exec"), names)  # built from column names only
    encode: Callable[[Any], tuple[Any, ...]] = names["encode"]
    return encode


def encoder(column: Column[Any], codec: Codec) -> Callable[[Any], Any] | None:
    """What turns a row's value into a driver value; None: it goes as it is (str enums are str)."""
    if isinstance(column.type, UtcDateTime):
        return codec.time_out
    if isinstance(column.type, JSON):
        return codec.json_out
    if column.name == "dot":
        return int
    return None


def decoder(column: Column[Any], codec: Codec) -> Callable[[Any], Any] | None:
    """What turns a driver value back into the row's; None: it comes as it is."""
    if isinstance(column.type, UtcDateTime):
        return codec.time_reader()
    if isinstance(column.type, JSON):
        return codec.json_in
    if isinstance(column.type, Boolean):
        return Codec.bool_in
    if column.name == "dot":
        return str
    if column.name == "source" and column.table is not DAILY and column.table is not TOTALS:
        return member_of(SourceKey)
    if column.name in ("state", "status"):
        return member_of(SyncState)
    return None


def member_of(kind: type[E]) -> Callable[[Any], E]:
    """`kind(value)` for a str enum, by one dict lookup for its members' values (an unknown value still
    raises `kind`'s ValueError).
    """
    members: dict[Any, E] = {member.value: member for member in kind}

    def read(value: Any) -> E:
        member = members.get(value)
        return kind(value) if member is None else member

    return read
