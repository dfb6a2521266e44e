"""GuardedStore, the base of the stores whose plans may drop rows: `connect` opens the subclass's tables
(after its migration), the change outbox and the drop guard's table, keeps the guard it is given, and
`close` lets the engine go. SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, Table, inspect

from fmcsa_source_kit.guard import DropGuard
from fmcsa_source_kit.tables import GuardedStore

_metadata = MetaData()
probe_rows = Table("probe_rows", _metadata, Column("id", Integer, primary_key=True))
migrated: list[str] = []


def _migrate(connection: Connection) -> None:
    migrated.append(connection.dialect.name)


class ProbeStore(GuardedStore):
    TABLES = (probe_rows,)
    MIGRATE = _migrate


async def test_connect_opens_the_tables_outbox_marks_and_guard_table_with_the_guard_given(
    database_url: str,
) -> None:
    guard = DropGuard(share=0.25, min_held=4)
    migrated.clear()
    store = await ProbeStore.connect(database_url, guard=guard)
    try:

        def names(connection: Connection) -> set[str]:
            return set(inspect(connection).get_table_names())

        async with store.engine.connect() as connection:
            tables = await connection.run_sync(names)
        assert {"probe_rows", "change_outbox", "suspect_drops", "fetch_marks"} <= tables
        assert migrated == [store.engine.dialect.name]
        assert store._guard is guard
    finally:
        await store.close()

    again: Any = await ProbeStore.connect(database_url)  # tables there: nothing to create, same answer
    try:
        assert again._guard == DropGuard()
    finally:
        await again.close()
