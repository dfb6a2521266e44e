"""The notifier's own store (SQLite by default, PostgreSQL in production): rule events, deliveries,
attempts and destinations, in the tables `fmcsa_alerts.deliveries` defines for its readers.

Every write is idempotent: a rule event is keyed by its stream sequence, a delivery by its id (a
redelivered change plans the same ids again and changes nothing), and an attempt is recorded with
the delivery's new state in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable

from fmcsa_alerts.deliveries import DeliveryStatus, aware, deliveries, destinations, metadata, rule_events
from fmcsa_alerts.deliveries import attempts as attempts_table
from fmcsa_alerts.retry import Delivered, GaveUp, RetryLater, Settled
from fmcsa_alerts.rules import RuleEvent
from fmcsa_events.models import AlertRuleChanged, AlertRuleRemoved, CarrierDataChanged
from fmcsa_notifier.domain import Planned
from fmcsa_runtime.database import answers, create_engine


@dataclass(frozen=True, slots=True)
class Work:
    """What an attempt needs of a delivery."""

    id: str
    url: str
    destination_id: str
    sealed_secret: str
    body: bytes
    status: DeliveryStatus
    round_attempts: int
    attempts: int
    next_attempt_at: datetime | None


class NotifierStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    async def connect(cls, url: str) -> NotifierStore:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        return cls(engine)

    async def close(self) -> None:
        await self._engine.dispose()

    async def answers(self) -> bool:
        """Whether the database answers now (the notifier's readiness)."""
        return await answers(self._engine)

    def _insert(self, connection: AsyncConnection, table: Table) -> Executable:
        """An insert that leaves an existing row (same key) as it was."""
        if connection.dialect.name == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    async def record_rule(self, seq: int, event: RuleEvent) -> None:
        """Keep a rule event at its stream sequence; the same sequence again changes nothing."""
        async with self._engine.begin() as connection:
            await connection.execute(
                self._insert(connection, rule_events),
                [
                    {
                        "seq": seq,
                        "name": event.name,
                        "removed": isinstance(event, AlertRuleRemoved),
                        "payload": event.model_dump_json(),
                    }
                ],
            )

    async def rule_history(self) -> list[tuple[int, RuleEvent]]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(rule_events).order_by(rule_events.c.seq))).all()
        history: list[tuple[int, RuleEvent]] = []
        for row in rows:
            cls = AlertRuleRemoved if row.removed else AlertRuleChanged
            history.append((row.seq, cls.model_validate_json(row.payload)))
        return history

    async def plan(
        self,
        planned: Sequence[Planned],
        *,
        change: CarrierDataChanged,
        event_id: str,
        seq: int,
        now: datetime,
    ) -> None:
        """Store the deliveries of one change; one to a failing destination is stored `held`."""
        if not planned:
            return
        async with self._engine.begin() as connection:
            failing = {
                row.id
                for row in await connection.execute(
                    select(destinations.c.id).where(destinations.c.failing.is_(True))
                )
            }
            rows = [
                {
                    "id": p.id,
                    "rule": p.rule,
                    "url": p.url,
                    "destination_id": p.destination_id,
                    "change_event_id": event_id,
                    "change_seq": seq,
                    "dot": change.dot,
                    "kind": change.kind.value,
                    "subject": change.subject,
                    "observed_at": change.observed_at,
                    "body": p.body.decode(),
                    "sealed_secret": p.sealed_secret,
                    "status": (
                        DeliveryStatus.HELD if p.destination_id in failing else DeliveryStatus.PENDING
                    ).value,
                    "attempts": 0,
                    "round_attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for p in planned
            ]
            await connection.execute(self._insert(connection, deliveries), rows)
            destination_rows = [
                {"id": p.destination_id, "url": p.url, "failing": False, "updated_at": now} for p in planned
            ]
            await connection.execute(
                self._insert(connection, destinations),
                destination_rows,
            )

    async def work(self, ids: Sequence[str]) -> list[Work]:
        if not ids:
            return []
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(deliveries).where(deliveries.c.id.in_(list(ids))))).all()
        order = {ident: n for n, ident in enumerate(ids)}
        found = [
            Work(
                id=row.id,
                url=row.url,
                destination_id=row.destination_id,
                sealed_secret=row.sealed_secret,
                body=row.body.encode(),
                status=DeliveryStatus(row.status),
                round_attempts=row.round_attempts,
                attempts=row.attempts,
                next_attempt_at=aware(row.next_attempt_at),
            )
            for row in rows
        ]
        return sorted(found, key=lambda w: order[w.id])

    async def ids_for_change(self, event_id: str) -> list[str]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(deliveries.c.id)
                .where(deliveries.c.change_event_id == event_id)
                .order_by(deliveries.c.rule, deliveries.c.url)
            )
            return [row.id for row in rows]

    async def record_attempt(
        self,
        work: Work,
        *,
        settled: Settled,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        at: datetime,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Record one attempt and the delivery's new state; returns True when this delivery brought a
        failing destination back (its held deliveries can go now).
        """
        async with self._engine.begin() as connection:
            await connection.execute(
                attempts_table.insert().values(
                    delivery_id=work.id,
                    number=work.attempts + 1,
                    at=at,
                    status_code=status_code,
                    error=(error or "")[:500] or None,
                    duration_ms=duration_ms,
                )
            )
            values: dict[str, object] = {
                "attempts": work.attempts + 1,
                "round_attempts": work.round_attempts + 1,
                "last_status_code": status_code,
                "last_error": (error or "")[:500] or None,
                "updated_at": at,
            }
            match settled:
                case Delivered():
                    values |= {
                        "status": DeliveryStatus.DELIVERED.value,
                        "delivered_at": at,
                        "next_attempt_at": None,
                    }
                case RetryLater():
                    values |= {"status": DeliveryStatus.PENDING.value, "next_attempt_at": next_attempt_at}
                case GaveUp():
                    values |= {"status": DeliveryStatus.FAILED.value, "next_attempt_at": None}
            await connection.execute(update(deliveries).where(deliveries.c.id == work.id).values(**values))
            was_failing = bool(
                (
                    await connection.execute(
                        select(destinations.c.failing).where(destinations.c.id == work.destination_id)
                    )
                ).scalar()
            )
            if isinstance(settled, Delivered) and was_failing:
                await connection.execute(
                    update(destinations)
                    .where(destinations.c.id == work.destination_id)
                    .values(failing=False, failing_since=None, last_error=None, updated_at=at)
                )
                return True
            if isinstance(settled, GaveUp) and settled.retryable:
                await connection.execute(
                    update(destinations)
                    .where(destinations.c.id == work.destination_id)
                    .values(
                        failing=True,
                        failing_since=at if not was_failing else destinations.c.failing_since,
                        last_error=settled.reason[:500],
                        updated_at=at,
                    )
                )
        return False

    async def reset_for_resend(self, delivery_id: str, *, now: datetime) -> bool:
        """Make a delivery pending again for a new round of attempts; False when it is unknown."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status=DeliveryStatus.PENDING.value, round_attempts=0, next_attempt_at=now, updated_at=now
                )
            )
            return bool(result.rowcount)

    async def held_for(self, destination: str) -> list[str]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(deliveries.c.id)
                .where(
                    deliveries.c.destination_id == destination,
                    deliveries.c.status == DeliveryStatus.HELD.value,
                )
                .order_by(deliveries.c.change_seq)
            )
            return [row.id for row in rows]
