from dataclasses import make_dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Table

from fmcsa_status_view.binding import RowBinding, encoder
from fmcsa_status_view.codec import POSTGRES, SQLITE, Codec
from fmcsa_status_view.tables import TABLES, UtcDateTime, columns

MOMENTS = [
    datetime(2026, 12, 7, 15, 30, 1, 250, tzinfo=UTC),
    datetime(2026, 12, 7, 10, 30, 1, 250, tzinfo=timezone(timedelta(hours=-5))),  # the same instant
    datetime(2026, 12, 7, 15, 30),  # naive: UTC
    None,
]


def row_of(table: Table, variant: int) -> Any:
    """A row object with every column of `table` as an attribute, valued by the column's type."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column.type, UtcDateTime):
            values[column.name] = MOMENTS[variant % len(MOMENTS)]
        elif isinstance(column.type, JSON):
            values[column.name] = [None, {"b": 1, "a": [1.5, "x"]}, "text"][variant % 3]
        elif column.name == "dot":
            values[column.name] = str(1000 + variant)
        else:
            values[column.name] = f"{column.name}-{variant}"
    cls = make_dataclass(f"{table.name}_row", list(values))
    return cls(**values)


def reference(table: Table, codec: Codec, row: Any) -> tuple[Any, ...]:
    out = []
    for column in table.columns:
        convert = encoder(column, codec)
        value = getattr(row, column.name)
        out.append(convert(value) if convert is not None else value)
    return tuple(out)


@pytest.mark.parametrize("codec", [SQLITE, POSTGRES], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_a_row_encodes_to_each_column_s_converted_value_in_column_order(table: Table, codec: Codec) -> None:
    """`RowBinding.encode` is compiled per binding (with SQLite's time texts looked up first): it must
    give what converting each column in turn gives, cached text or not."""
    for variant in range(8):
        row = row_of(table, variant)
        binding = RowBinding(table, type(row), codec, (columns(table)[0],))
        assert binding.encode(row) == reference(table, codec, row)
        assert binding.encode(row) == reference(table, codec, row)  # the second time from the cache
