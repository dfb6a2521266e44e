"""What a fetch does to a source's store, decided before any write: `plan(held, fetched) -> Plan`.

Every source declares one pure function from what its store holds for a carrier and what was fetched
to a `Plan`: the rows to insert, to update and to age out, how many were unchanged, and the change
facts to publish. The store only executes a plan, in one transaction with the change outbox
(`fmcsa_source_kit.outbox`), so every business decision (is this row new, did this status change, is
this a baseline) is unit-tested without a database, and a store holds no `if` about the domain.

Rules every plan keeps (tested per source):
- a carrier's first fetch is a baseline: it inserts and plans no change fact;
- planning the same fetch against what it produced plans nothing (`Plan.is_empty`), so a redelivered
  request writes nothing new and publishes no second change;
- `counts` cover the fetched records: `fetched = inserted + updated + unchanged`.

`touch` holds the writes of records whose content did not change (they count as `unchanged`) but whose
bookkeeping moves: a later "last seen" or "checked at" time, a version kept as history. A plan with
only touches is not empty (it writes), yet it changes no record and plans no change fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from fmcsa_events.models import CarrierDataChanged, Counts

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Plan(Generic[R]):
    """The writes and change facts one fetch causes; `R` is the source's row (or row key) type."""

    insert: tuple[R, ...] = ()
    update: tuple[R, ...] = ()
    age_out: tuple[R, ...] = ()
    unchanged: int = 0
    changes: tuple[CarrierDataChanged, ...] = field(default=())
    touch: tuple[R, ...] = ()

    @property
    def counts(self) -> Counts:
        fetched = len(self.insert) + len(self.update) + self.unchanged
        return Counts(
            fetched=fetched, inserted=len(self.insert), updated=len(self.update), unchanged=self.unchanged
        )

    @property
    def is_empty(self) -> bool:
        """True when executing the plan would write no row and record no change."""
        return not (self.insert or self.update or self.age_out or self.changes or self.touch)


@dataclass(frozen=True, slots=True)
class Observation:
    """What every change fact of one fetch shares: the request that fetched it and when, and the date
    the upstream says its data describes. A plan builds its `CarrierDataChanged` events from it.
    """

    request_id: UUID
    dot: str
    observed_at: datetime
    upstream_as_of: datetime | None
