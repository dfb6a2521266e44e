"""The notifier's tables, and the read-only queries the gateway runs on them (as status-view does).

The notifier is the one writer. The gateway opens the same database read-only to list deliveries and
destinations, and never writes: a resend is an event (`WebhookResendRequested`) the notifier acts on.
A delivery is one (change, rule, destination): `pending` (an attempt is due at `next_attempt_at`),
`delivered`, `failed` (refused by the receiver, or every attempt of the schedule failed) or `held`
(its destination is failing; it waits until a delivery there succeeds again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    select,
)
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fmcsa_runtime.database import create_engine


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    HELD = "held"


metadata = MetaData()

rule_events = Table(
    "alert_rule_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False, index=True),
    Column("removed", Boolean, nullable=False),
    Column("payload", Text, nullable=False),
)

deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("rule", String(64), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("destination_id", String(16), nullable=False, index=True),
    Column("change_event_id", String(200), nullable=False, index=True),
    Column("change_seq", BigInteger, nullable=False),
    Column("dot", String(8), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("subject", String(80), nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),
    Column("sealed_secret", Text, nullable=False),  # encrypted (sealing.py); never read by the gateway
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("round_attempts", Integer, nullable=False, default=0),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
)

attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(32), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("duration_ms", Integer, nullable=False),
)

destinations = Table(
    "webhook_destinations",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("failing", Boolean, nullable=False),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    rule: str
    url: str
    destination_id: str
    change_event_id: str
    change_seq: int
    dot: str
    kind: str
    subject: str
    observed_at: datetime
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    history: tuple[Attempt, ...] = ()


@dataclass(frozen=True, slots=True)
class Destination:
    id: str
    url: str
    failing: bool
    failing_since: datetime | None
    last_error: str | None
    held: int


def delivery_from(row: object, history: Sequence[Attempt] = ()) -> Delivery:
    r = row._mapping  # type: ignore[attr-defined]  # a SQLAlchemy Row
    return Delivery(
        id=r["id"],
        rule=r["rule"],
        url=r["url"],
        destination_id=r["destination_id"],
        change_event_id=r["change_event_id"],
        change_seq=r["change_seq"],
        dot=r["dot"],
        kind=r["kind"],
        subject=r["subject"],
        observed_at=aware(r["observed_at"]) or r["observed_at"],
        status=DeliveryStatus(r["status"]),
        attempts=r["attempts"],
        last_status_code=r["last_status_code"],
        last_error=r["last_error"],
        next_attempt_at=aware(r["next_attempt_at"]),
        created_at=aware(r["created_at"]) or r["created_at"],
        delivered_at=aware(r["delivered_at"]),
        history=tuple(history),
    )


class DeliveriesView:
    """Read-only queries over the notifier's database; a database the notifier has not created yet
    reads as empty.
    """

    def __init__(self, url: str) -> None:
        self._engine: AsyncEngine = create_engine(url)

    async def close(self) -> None:
        await self._engine.dispose()

    async def recent(
        self,
        *,
        rule: str | None = None,
        dot: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Delivery]:
        """Newest first (by creation, then id); `before` is the id of the last item of the previous page."""
        query = select(deliveries)
        filters = []
        if rule is not None:
            filters.append(deliveries.c.rule == rule)
        if dot is not None:
            filters.append(deliveries.c.dot == dot)
        if status is not None:
            filters.append(deliveries.c.status == status.value)
        try:
            async with self._engine.connect() as connection:
                if before is not None:
                    anchor = (
                        await connection.execute(
                            select(deliveries.c.created_at).where(deliveries.c.id == before)
                        )
                    ).first()
                    if anchor is not None:
                        filters.append(
                            (deliveries.c.created_at < anchor.created_at)
                            | and_(deliveries.c.created_at == anchor.created_at, deliveries.c.id < before)
                        )
                query = query.where(*filters).order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
                rows = (await connection.execute(query.limit(limit))).all()
                ids = [row.id for row in rows]
                found = await self._attempts(connection, ids)
        except (OperationalError, ProgrammingError):
            return []  # no table yet: the notifier has not started on this database
        return [delivery_from(row, found.get(row.id, ())) for row in rows]

    async def get(self, delivery_id: str) -> Delivery | None:
        try:
            async with self._engine.connect() as connection:
                row = (
                    await connection.execute(select(deliveries).where(deliveries.c.id == delivery_id))
                ).first()
                if row is None:
                    return None
                found = await self._attempts(connection, [delivery_id])
        except (OperationalError, ProgrammingError):
            return None
        return delivery_from(row, found.get(delivery_id, ()))

    async def change_ids_fired(self, rule: str, *, since: datetime, until: datetime | None) -> set[str]:
        """The change event ids the rule fired on live, for changes observed in `[since, until)`."""
        query = select(deliveries.c.change_event_id).where(
            deliveries.c.rule == rule, deliveries.c.observed_at >= since
        )
        if until is not None:
            query = query.where(deliveries.c.observed_at < until)
        try:
            async with self._engine.connect() as connection:
                return {row.change_event_id for row in await connection.execute(query.distinct())}
        except (OperationalError, ProgrammingError):
            return set()

    async def destinations(self) -> list[Destination]:
        try:
            async with self._engine.connect() as connection:
                rows = (await connection.execute(select(destinations).order_by(destinations.c.url))).all()
                held = {
                    row.destination_id: row.n
                    for row in await connection.execute(
                        select(deliveries.c.destination_id, func.count().label("n"))
                        .where(deliveries.c.status == DeliveryStatus.HELD.value)
                        .group_by(deliveries.c.destination_id)
                    )
                }
        except (OperationalError, ProgrammingError):
            return []
        return [
            Destination(
                id=row.id,
                url=row.url,
                failing=bool(row.failing),
                failing_since=aware(row.failing_since),
                last_error=row.last_error,
                held=held.get(row.id, 0),
            )
            for row in rows
        ]

    @staticmethod
    async def _attempts(connection: AsyncConnection, ids: Sequence[str]) -> dict[str, list[Attempt]]:
        found: dict[str, list[Attempt]] = {}
        if not ids:
            return found
        result = await connection.execute(
            select(attempts).where(attempts.c.delivery_id.in_(ids)).order_by(attempts.c.id)
        )
        for row in result:
            found.setdefault(row.delivery_id, []).append(
                Attempt(row.number, aware(row.at) or row.at, row.status_code, row.error, row.duration_ms)
            )
        return found
