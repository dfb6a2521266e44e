"""What one complete read of a carrier does to the store, decided before any write: `plan`.

`plan(held, fetched, seen)` compares what the store holds for a carrier (`Held`: every row, aged-out
rows included; None when the carrier was never read) with a complete read, by violation key
`(dot_number, unique_id, viol_code, viol_unit, ordinal)` (docs/upstreams.md 4.5):

- a key not held is **inserted**;
- a held key with another content hash is **updated**, and the held content is **superseded** (kept
  as a version: evidence outlives the upstream);
- a key back after aging out is **updated** (superseded too if its content moved meanwhile);
- a held key with the same content hash is **unchanged**; when only `time_weight` or
  `total_severity_wght` moved (the calendar, not an event on the road) it is **refreshed** silently;
- a key held in the window but missing from the read **ages out** (not counted, not deleted);
- the change facts are `detect_changes` between the held window and the read: a carrier's first read is
  a baseline and plans none; the same read planned against what it produced plans nothing.

Pure: no I/O, no clock; the store executes the plan in one transaction with the change outbox.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import JsonValue

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind
from fmcsa_source_kit.plan import Observation, Plan
from fmcsa_source_violations.domain.model import Violation, ViolationsFetch

CHANGE_SUBJECT = "violations"
"""The `subject` of both violations change kinds: the carrier's window of violation rows as a whole."""


def violation_totals(rows: Sequence[Violation]) -> dict[str, JsonValue]:
    """The small JSON of a set of rows in a change fact: `count`, `oos_count`, distinct `inspections`,
    `per_basic` (BASIC key or `unknown` -> count, sorted) and `latest_inspection_date` (ISO or None).
    """
    per_basic = Counter(v.basic.value if v.basic else "unknown" for v in rows)
    latest = max((v.insp_date for v in rows), default=None)
    return {
        "count": len(rows),
        "oos_count": sum(1 for v in rows if v.oos),
        "inspections": len({v.unique_id for v in rows}),
        "per_basic": {key: per_basic[key] for key in sorted(per_basic)},
        "latest_inspection_date": latest.isoformat() if latest else None,
    }


def detect_changes(
    before: ViolationsFetch | None, after: ViolationsFetch, *, request_id: UUID, observed_at: datetime
) -> list[CarrierDataChanged]:
    """The change facts between the rows held for a carrier (`before`: its current window, aged-out
    rows left out) and a complete new read, compared by violation key.

    - `before` None (the carrier was never read) is a baseline: no change.
    - `violations_added`: keys in the read but not held. `before` = the held totals, `after` = the
      totals of the NEW rows only (`violation_totals`), so "2 new, 1 out-of-service" reads directly.
    - `violations_aged_out`: held keys missing from the read (they left the 24-month window, or the
      upstream dropped them). `before` = the held totals, `after` = the totals of the rows leaving.
    - A key in both is no change, whatever moved: a `time_weight` step is the calendar, not an event,
      and a corrected row is counted as `updated` by the store but is neither added nor aged out.
    """
    if before is None:
        return []
    held = {violation.key: violation for violation in before.records}
    fresh = {violation.key: violation for violation in after.records}
    added = [violation for key, violation in fresh.items() if key not in held]
    gone = [violation for key, violation in held.items() if key not in fresh]
    totals = violation_totals(before.records)
    changes: list[CarrierDataChanged] = []
    for kind, rows in ((ChangeKind.VIOLATIONS_ADDED, added), (ChangeKind.VIOLATIONS_AGED_OUT, gone)):
        if rows:
            changes.append(
                CarrierDataChanged(
                    request_id=request_id,
                    dot=after.dot,
                    source=SourceKey.VIOLATIONS,
                    kind=kind,
                    subject=CHANGE_SUBJECT,
                    before=totals,
                    after=violation_totals(rows),
                    upstream_as_of=after.upstream_as_of,
                    observed_at=observed_at,
                )
            )
    return changes


@dataclass(frozen=True, slots=True)
class HeldRow:
    """One row the store holds for a carrier: its content, when that content last changed, and
    whether a complete read missed it (aged out).
    """

    violation: Violation
    changed_at: datetime
    aged_out: bool


@dataclass(frozen=True, slots=True)
class Held:
    """What the store holds for a carrier that was read before: its last read and every row."""

    dot: str
    last_fetched_at: datetime
    upstream_as_of: datetime | None
    rows: tuple[HeldRow, ...]

    def window(self) -> ViolationsFetch:
        """The rows in the current window (aged-out rows left out) as the fetch that held them."""
        return ViolationsFetch(
            dot=self.dot,
            retrieved_at=self.last_fetched_at,
            upstream_as_of=self.upstream_as_of,
            records=tuple(row.violation for row in self.rows if not row.aged_out),
            pages=0,
        )


@dataclass(frozen=True, slots=True)
class ViolationsPlan(Plan[Violation]):
    """The kit's `Plan` of violation rows, plus the two writes only this source makes: `supersede`
    (held contents an update replaces, kept as versions) and `refresh` (unchanged rows whose
    `time_weight` or `total_severity_wght` moved).
    """

    supersede: tuple[HeldRow, ...] = ()
    refresh: tuple[Violation, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when executing the plan would change no violation row and record no change."""
        return not (self.insert or self.update or self.age_out or self.changes or self.refresh)


def plan(held: Held | None, fetched: ViolationsFetch, seen: Observation) -> ViolationsPlan:
    """The writes and change facts of one complete read (module docstring)."""
    rows = {row.violation.key: row for row in held.rows} if held is not None else {}
    insert: list[Violation] = []
    update: list[Violation] = []
    supersede: list[HeldRow] = []
    refresh: list[Violation] = []
    unchanged = 0
    for violation in fetched.records:
        old = rows.get(violation.key)
        if old is None:
            insert.append(violation)
        elif old.violation.content_hash != violation.content_hash:
            supersede.append(old)
            update.append(violation)
        elif old.aged_out:
            update.append(violation)
        else:
            unchanged += 1
            if _weights(old.violation) != _weights(violation):
                refresh.append(violation)
    fresh = {violation.key for violation in fetched.records}
    age_out = [row.violation for key, row in rows.items() if key not in fresh and not row.aged_out]
    changes = detect_changes(
        held.window() if held is not None else None,
        fetched,
        request_id=seen.request_id,
        observed_at=seen.observed_at,
    )
    return ViolationsPlan(
        insert=tuple(insert),
        update=tuple(update),
        age_out=tuple(age_out),
        unchanged=unchanged,
        changes=tuple(changes),
        supersede=tuple(supersede),
        refresh=tuple(refresh),
    )


def _weights(violation: Violation) -> tuple[int, int | None]:
    return violation.time_weight, violation.total_severity_wght
