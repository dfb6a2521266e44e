"""`upsert_insert`: one spelling of INSERT ... ON CONFLICT for both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from fmcsa_runtime.database import upsert_insert

rows = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))
DIALECTS: list[tuple[Dialect, type]] = [
    (postgresql.dialect(), postgresql.Insert),
    (sqlite.dialect(), sqlite.Insert),
]


@pytest.mark.parametrize(("dialect", "construct"), DIALECTS, ids=["postgresql", "sqlite"])
def test_the_insert_is_the_dialects_own_and_takes_on_conflict(dialect: Dialect, construct: type) -> None:
    insert = upsert_insert(dialect, rows)
    assert type(insert) is construct
    update = insert.on_conflict_do_update(index_elements=["id"], set_={"name": insert.excluded.name})
    assert "ON CONFLICT (id) DO UPDATE SET name = excluded.name" in str(update.compile(dialect=dialect))
    assert "ON CONFLICT DO NOTHING" in str(insert.on_conflict_do_nothing().compile(dialect=dialect))
