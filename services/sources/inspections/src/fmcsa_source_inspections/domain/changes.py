"""What a fetch changes: the change facts between two snapshots, and the `plan` of one fetch's writes.

`plan(held, fetched)` is every decision a store write makes, with no I/O: is the carrier new, did its
content change (by content hash), is the fetch older than the one held (a late redelivery: kept as a
version, the current snapshot stays), which times advance, and which change facts to publish. The store
loads `Held` for a carrier and executes the `Plan` (fmcsa_source_kit.plan) in one transaction with the
change outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import JsonValue

from fmcsa_events import decimals
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind
from fmcsa_source_inspections.domain.content import content_hash, crashes_content, opt_date, opt_decimal
from fmcsa_source_inspections.domain.records import (
    Crashes,
    InspectionFigures,
    InspectionsFetch,
    Snapshot,
    as_of,
)
from fmcsa_source_kit.plan import Plan

# ---------------------------------------------------------------------------------------------------
# Change facts


DEFAULT_OOS_RATE_CHANGE_POINTS = Decimal(5)
"""How far (percentage points) a US out-of-service rate must move to be a change fact, by default."""


def _status_state(snapshot: Snapshot) -> JsonValue:
    return {
        "status": snapshot.operating_status,
        "out_of_service_date": opt_date(snapshot.out_of_service_date),
    }


def _rating_state(snapshot: Snapshot) -> JsonValue:
    rating = None if snapshot.safety_rating is None else snapshot.safety_rating.value
    return {"rating": rating, "rating_date": opt_date(snapshot.safety_rating_date)}


def _oos_state(figures: InspectionFigures) -> JsonValue:
    return {
        "percent": opt_decimal(figures.out_of_service_percent),
        "inspections": figures.inspections,
        "out_of_service": figures.out_of_service,
        "national_average": opt_decimal(figures.national_average),
    }


def _oos_percent(snapshot: Snapshot, group: str) -> tuple[InspectionFigures, Decimal] | None:
    """A US inspection group's figures and its out-of-service percent, or None when unknown."""
    block = snapshot.us_inspections
    figures: InspectionFigures | None = None if block is None else getattr(block, group)
    if figures is None or figures.out_of_service_percent is None:
        return None
    return figures, figures.out_of_service_percent


def _crash_total(crashes: Crashes | None) -> int | None:
    return None if crashes is None else crashes.total


Fact = tuple[ChangeKind, str, JsonValue, JsonValue]


def _changed_facts(old: Snapshot, new: Snapshot, points: Decimal) -> list[Fact]:
    facts: list[Fact] = []
    if new.operating_status is not None and new.operating_status != old.operating_status:
        facts.append(
            (ChangeKind.OPERATING_STATUS_CHANGED, "operating_status", _status_state(old), _status_state(new))
        )
    rated = (new.safety_rating, new.safety_rating_date)
    if new.safety_rating is not None and rated != (old.safety_rating, old.safety_rating_date):
        facts.append(
            (ChangeKind.SAFETY_RATING_CHANGED, "safety_rating", _rating_state(old), _rating_state(new))
        )
    for subject, was, now in (
        ("us", old.us_crashes, new.us_crashes),
        ("canada", old.canada_crashes, new.canada_crashes),
    ):
        total_was, total_now = _crash_total(was), _crash_total(now)
        if total_was is not None and total_now is not None and total_now > total_was:
            facts.append((ChangeKind.CRASHES_ADDED, subject, crashes_content(was), crashes_content(now)))
    for group in ("vehicle", "driver"):
        rate_was, rate_now = _oos_percent(old, group), _oos_percent(new, group)
        if (
            rate_was is not None
            and rate_now is not None
            and decimals.difference(rate_now[1], rate_was[1]).copy_abs() >= points  # exact: abs() would round
        ):
            facts.append(
                (ChangeKind.OOS_RATE_CHANGED, f"us_{group}", _oos_state(rate_was[0]), _oos_state(rate_now[0]))
            )
    return facts


def detect_changes(
    before: InspectionsFetch | None,
    after: InspectionsFetch,
    *,
    request_id: UUID,
    observed_at: datetime,
    oos_rate_change_points: Decimal = DEFAULT_OOS_RATE_CHANGE_POINTS,
) -> list[CarrierDataChanged]:
    """The change facts between the snapshot held (`before`) and a new fetch, in the order below.

    - `operating_status_changed` (subject `operating_status`; `{status, out_of_service_date}`): the
      status differs. A status the upstream left out (None) is unknown, not a change.
    - `safety_rating_changed` (subject `safety_rating`; `{rating, rating_date}`): a rating or its date
      differs (a first rating, another rating, or a new review with the same rating). A rating the
      upstream stops naming is not read as withdrawn: no fact.
    - `crashes_added` (subjects `us`, `canada`; `{fatal, injury, tow, total}`): the total went up.
      A total going down (crashes leaving the 24-month window) or unknown on either side is no fact.
    - `oos_rate_changed` (subjects `us_vehicle`, `us_driver`; `{percent, inspections, out_of_service,
      national_average}`): the US out-of-service percent moved by at least `oos_rate_change_points`
      (either way; both sides known).

    `before` None (the carrier's first snapshot) is a baseline; a fetch older than the one held (a
    late redelivery; the store keeps the newer) changes nothing; the same content changes nothing.
    """
    if before is None or before.retrieved_at > after.retrieved_at:
        return []
    if oos_rate_change_points <= 0:
        raise ValueError("oos_rate_change_points must be positive")
    return [
        CarrierDataChanged(
            request_id=request_id,
            dot=after.dot,
            source=SourceKey.INSPECTIONS,
            kind=kind,
            subject=subject,
            before=old,
            after=new,
            upstream_as_of=after.upstream_as_of,
            observed_at=observed_at,
        )
        for kind, subject, old, new in _changed_facts(before.snapshot, after.snapshot, oos_rate_change_points)
    ]


# ---------------------------------------------------------------------------------------------------
# The plan of one fetch


@dataclass(frozen=True, slots=True)
class Seen:
    """When one content of a carrier's snapshot was first and last seen (a row of the version table)."""

    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class HeldSnapshot:
    """The snapshot a store holds now for a carrier (its row of the current table)."""

    snapshot: Snapshot
    content_hash: str
    retrieved_at: datetime  # the fetch that stored or last confirmed it
    first_seen_at: datetime  # this content first seen
    checked_at: datetime  # the last fetch that found it unchanged


@dataclass(frozen=True, slots=True)
class Held:
    """What a store holds for one carrier: the current snapshot (None: never stored) and, by content
    hash, when each distinct content kept as a version was seen.
    """

    current: HeldSnapshot | None = None
    versions: Mapping[str, Seen] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Current:
    """The times of the carrier's current row after a write (its content is the write's snapshot)."""

    retrieved_at: datetime
    first_seen_at: datetime
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class SnapshotWrite:
    """What storing one fetched snapshot writes: the current row (`current`; None leaves the row held
    as it is) and the version row of its content, inserted when `new_version`, else its seen times set.
    """

    fetch: InspectionsFetch
    content_hash: str
    current: Current | None
    version: Seen
    new_version: bool

    @property
    def usdot(self) -> int:
        return self.fetch.snapshot.usdot


def plan(
    held: Held,
    fetched: InspectionsFetch,
    *,
    request_id: UUID,
    oos_rate_change_points: Decimal = DEFAULT_OOS_RATE_CHANGE_POINTS,
) -> Plan[SnapshotWrite]:
    """The writes and change facts of storing `fetched` (one snapshot) over `held`.

    - nothing held: `insert` (a baseline: no change fact);
    - the held content hash differs and the fetch is no older than the one held: `update`, with the
      change facts of `detect_changes` (observed at the fetch's `retrieved_at`);
    - the same content: `unchanged`; the held times move to the later fetch (a `touch`) if it is later;
    - other content but an older fetch (a late redelivery): `unchanged`; the current snapshot stays and
      the older content is kept as a version (a `touch`).

    Every distinct content is kept as a version whose seen span covers every fetch of it. Planning a
    fetch against what it produced plans nothing (`Plan.is_empty`).
    """
    if oos_rate_change_points <= 0:
        raise ValueError("oos_rate_change_points must be positive")
    at = fetched.retrieved_at
    digest = content_hash(fetched.snapshot)
    seen = held.versions.get(digest)
    version = Seen(at, at) if seen is None else Seen(min(seen.first_seen_at, at), max(seen.last_seen_at, at))
    version_moves = version != seen

    def write(current: Current | None) -> SnapshotWrite:
        return SnapshotWrite(fetched, digest, current, version, new_version=seen is None)

    now = held.current
    if now is None:
        return Plan(insert=(write(Current(at, at, at)),))
    if now.content_hash != digest and at >= now.retrieved_at:
        changes = detect_changes(
            _as_fetch(fetched.dot, now),
            fetched,
            request_id=request_id,
            observed_at=at,
            oos_rate_change_points=oos_rate_change_points,
        )
        return Plan(update=(write(Current(at, at, at)),), changes=tuple(changes))
    confirmed: Current | None = None
    if now.content_hash == digest and (at > now.retrieved_at or at > now.checked_at):
        confirmed = Current(max(now.retrieved_at, at), now.first_seen_at, max(now.checked_at, at))
    if confirmed is None and not version_moves:
        return Plan(unchanged=1)
    return Plan(touch=(write(confirmed),), unchanged=1)


def _as_fetch(dot: str, held: HeldSnapshot) -> InspectionsFetch:
    """The held snapshot as the fetch that last stored or confirmed it (the "before" of a change)."""
    return InspectionsFetch(
        dot=dot, retrieved_at=held.retrieved_at, upstream_as_of=as_of(held.snapshot), snapshot=held.snapshot
    )
