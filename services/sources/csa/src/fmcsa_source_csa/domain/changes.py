"""What one csa fetch changes: the pure `plan(held, fetched, seen) -> Plan` and the change facts.

The store loads what it holds for a DOT (`Held`) and executes the plan in one transaction with the
change outbox; every decision is here (`fmcsa_source_kit.plan` has the rules every plan keeps):

- **Records.** A fetch holds the carrier's facts and each BASIC (`fetched = BASICs + 1`). A record
  with a new key is inserted, one whose content hash differs from the held row's is updated, the same
  hash is unchanged. Labels are not hashed (fmcsa README 3.7): the store refreshes them silently.
- **Aging out.** A BASIC held but missing from a complete answer ages out (`absent_since`, never
  deleted, not counted); when it comes back it is updated, whatever its hash.
- **Late fetches.** A held row seen after this fetch was retrieved (a late redelivery) is unchanged:
  current rows only move forward in time, and a late fetch ages nothing out and changes nothing.
- **Change facts** (`detect_changes`): the first fetch of a carrier is a baseline (none); the same
  fetch again plans nothing (`Plan.is_empty`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from uuid import UUID

from pydantic import JsonValue

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind
from fmcsa_source_csa.domain.model import BasicScore, CarrierFacts, CsaFetch, PercentileStatus, decimal_text
from fmcsa_source_kit.plan import Observation, Plan

Record = CarrierFacts | BasicScore
"""What a csa plan inserts or updates (the carrier's facts or one BASIC) and ages out (a BASIC)."""


@dataclass(frozen=True, slots=True)
class HeldBasic:
    """A BASIC row the store holds: its value, the hash it was stored with, when it was last seen, and
    since when it has been missing from the answers (None while present).
    """

    score: BasicScore
    content_hash: str
    last_seen_at: datetime
    absent_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """What the store holds for one DOT: the carrier row and every BASIC row, absent ones included."""

    dot: str
    carrier: CarrierFacts
    carrier_hash: str
    last_seen_at: datetime
    upstream_as_of: datetime | None
    basics: Mapping[int, HeldBasic] = field(default_factory=dict)

    def as_fetch(self) -> CsaFetch:
        """The held data as a fetch (what `detect_changes` compares with): the BASICs present at the
        last fetch, in id order; `retrieved_at` is when the carrier was last seen.
        """
        present = sorted(
            (held.score for held in self.basics.values() if held.absent_since is None),
            key=lambda basic: basic.basics_id,
        )
        return CsaFetch(
            dot=self.dot,
            retrieved_at=self.last_seen_at,
            upstream_as_of=self.upstream_as_of,
            carrier=self.carrier,
            basics=tuple(present),
        )


def plan(held: Held | None, fetched: CsaFetch, seen: Observation) -> Plan[Record]:
    """The writes and change facts of storing `fetched` over `held` (the module docstring's rules).

    `seen.observed_at` is the fetch's retrieval time (the instant rows are judged against) and the
    change facts' `observed_at`; `seen.request_id` makes their event ids.
    """
    at = seen.observed_at
    insert: list[Record] = []
    update: list[Record] = []
    unchanged = 0
    if held is None:
        insert.append(fetched.carrier)
    elif held.last_seen_at > at or held.carrier_hash == fetched.carrier.content_hash():
        unchanged += 1
    else:
        update.append(fetched.carrier)
    rows = held.basics if held is not None else {}
    for basic in fetched.basics:
        row = rows.get(basic.basics_id)
        if row is None:
            insert.append(basic)
        elif row.last_seen_at > at:
            unchanged += 1
        elif row.content_hash != basic.content_hash() or row.absent_since is not None:
            update.append(basic)
        else:
            unchanged += 1
    fetched_ids = {basic.basics_id for basic in fetched.basics}
    age_out = tuple(
        row.score
        for basics_id, row in sorted(rows.items())
        if basics_id not in fetched_ids and row.absent_since is None and row.last_seen_at <= at
    )
    changes = detect_changes(
        held.as_fetch() if held is not None else None, fetched, request_id=seen.request_id, observed_at=at
    )
    return Plan(
        insert=tuple(insert),
        update=tuple(update),
        age_out=age_out,
        unchanged=unchanged,
        changes=tuple(changes),
    )


# --- change facts ---------------------------------------------------------------------------------

BASIC_SUBJECTS: Final = {
    11: "unsafe_driving",
    12: "hos_compliance",
    13: "driver_fitness",
    14: "controlled_substances_alcohol",
    15: "vehicle_maintenance",
}
"""The `subject` of a BASIC's change facts, by `basicsId`; an id not listed here is `basic_<id>`."""


def basic_subject(basics_id: int) -> str:
    """Name a BASIC in a change fact: `unsafe_driving` for 11, ..., `basic_<id>` for an unknown id."""
    return BASIC_SUBJECTS.get(basics_id, f"basic_{basics_id}")


def in_alert(basic: BasicScore | None) -> bool | None:
    """Whether a BASIC is at or above its intervention threshold; None when that is not known.

    A public percentile is compared with the answer's own `basicsViolationThreshold` (`percentile >=
    threshold`, the SMS definition of exceeding it): that is the crossing people watch, and it never
    depends on a flag that could lag the percentile. Without a public percentile or a threshold, the
    upstream's `exceededFMCSAInterventionThreshold` flag decides (Y/N), and "-1" (not public) or an
    absent BASIC is None: unknown, never "no alert".
    """
    if basic is None:
        return None
    public = basic.percentile_status is PercentileStatus.PUBLIC
    if public and basic.percentile is not None and basic.threshold is not None:
        return basic.percentile >= basic.threshold
    return basic.intervention_alert.value


def _basic_state(basic: BasicScore | None) -> JsonValue:
    """The `before` / `after` of a BASIC's change fact; None for a BASIC absent from the answer."""
    if basic is None:
        return None
    return {
        "percentile": decimal_text(basic.percentile),
        "status": basic.percentile_status.value,
        "measure": decimal_text(basic.measure),
        "threshold": basic.threshold,
        "alert": in_alert(basic),
    }


def _is_public(basic: BasicScore | None) -> bool:
    return basic is not None and basic.percentile_status is PercentileStatus.PUBLIC


def _basic_kinds(before: BasicScore | None, after: BasicScore | None) -> list[ChangeKind]:
    kinds: list[ChangeKind] = []
    if _is_public(before) and not _is_public(after):
        kinds.append(ChangeKind.BASIC_BECAME_NOT_PUBLIC)
    elif not _is_public(before) and _is_public(after):
        kinds.append(ChangeKind.BASIC_BECAME_PUBLIC)
    elif (
        _is_public(after)
        and before is not None
        and after is not None
        and before.percentile != after.percentile
    ):
        kinds.append(ChangeKind.BASIC_PERCENTILE_CHANGED)  # public before and after: the number moved
    was, now = in_alert(before), in_alert(after)
    if now is True and was is not True:
        kinds.append(ChangeKind.BASIC_ALERT_STARTED)
    elif was is True and now is False:
        kinds.append(ChangeKind.BASIC_ALERT_CLEARED)
    return kinds


def detect_changes(
    before: CsaFetch | None, after: CsaFetch, *, request_id: UUID, observed_at: datetime
) -> list[CarrierDataChanged]:
    """The change facts between what the store held (`before`) and a new fetch, in BASIC-id order.

    - `before` None (the carrier's first successful fetch) is a baseline: no change.
    - A fetch older than the one held (a late redelivery; the store keeps the newer data) changes
      nothing. The same data again changes nothing.
    - Per BASIC (matched on `basicsId`; `before` holds only BASICs present at the last fetch):
      `basic_became_public` / `basic_became_not_public` when the percentile turns public or stops
      being public ("Not Public", another word, or the BASIC left the answer: `after` is None);
      `basic_percentile_changed` when a public percentile moved (measure alone is not a change);
      `basic_alert_started` when `in_alert` turns True from False or unknown, `basic_alert_cleared`
      when it turns False from True (True to unknown clears nothing: it only became not public).
    - `before` / `after` are `{percentile, status, measure, threshold, alert}` (Decimals as strings).
    """
    if before is None or before.retrieved_at > after.retrieved_at:
        return []
    held = {basic.basics_id: basic for basic in before.basics}
    fresh = {basic.basics_id: basic for basic in after.basics}
    changes: list[CarrierDataChanged] = []
    for basics_id in sorted(held.keys() | fresh.keys()):
        old, new = held.get(basics_id), fresh.get(basics_id)
        for kind in _basic_kinds(old, new):
            changes.append(
                CarrierDataChanged(
                    request_id=request_id,
                    dot=after.dot,
                    source=SourceKey.CSA,
                    kind=kind,
                    subject=basic_subject(basics_id),
                    before=_basic_state(old),
                    after=_basic_state(new),
                    upstream_as_of=after.upstream_as_of,
                    observed_at=observed_at,
                )
            )
    return changes
