"""The change outbox of a source service: `CarrierDataChanged` facts written in the SAME transaction
as the store rows they describe, then published by the runner before the request's outcome.

Why: a source crash between storing a fetch and publishing its changes must lose no change. If the
changes lived only in memory, the redelivered request would fetch again, find nothing new (the store
already holds it) and the change would be gone. Written with the rows, they survive; the runner
publishes every change recorded for a request (deterministic ids, so JetStream drops repeats) each
time it answers that request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fmcsa_events.envelope import event_id
from fmcsa_events.models import CarrierDataChanged
from fmcsa_runtime.database import upsert_insert

_metadata = MetaData()
change_outbox = Table(
    "change_outbox",
    _metadata,
    Column("event_id", String(200), primary_key=True),
    Column("request_id", String(36), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


async def create_outbox(engine: AsyncEngine) -> None:
    """Create the outbox table if missing (idempotent); stores call it when they connect."""
    async with engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)


async def record_changes(connection: AsyncConnection, changes: Sequence[CarrierDataChanged]) -> None:
    """Add changes to the outbox inside the caller's transaction; a change already recorded (same
    event id) is left as it was.
    """
    if not changes:
        return
    rows = [
        {
            "event_id": event_id(change),
            "request_id": str(change.request_id),
            "position": position,
            "payload": change.model_dump_json(),
            "created_at": datetime.now(UTC),
        }
        for position, change in enumerate(changes)
    ]
    await connection.execute(upsert_insert(connection.dialect, change_outbox).on_conflict_do_nothing(), rows)


async def changes_for(engine: AsyncEngine, request_id: UUID) -> list[CarrierDataChanged]:
    """Every change recorded for one request, in the order it was recorded."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(change_outbox.c.payload)
            .where(change_outbox.c.request_id == str(request_id))
            .order_by(change_outbox.c.position)
        )
        return [CarrierDataChanged.model_validate_json(row.payload) for row in rows]
