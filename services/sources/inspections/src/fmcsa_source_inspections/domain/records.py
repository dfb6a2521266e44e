"""The records of the inspections source: one SAFER company snapshot, normalized, and the fetch that read it.

Numbers are exact: percents are `Decimal` with all their decimals (never a float).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum


class SafetyRating(StrEnum):
    """The FMCSA safety rating; a carrier never rated has None, not a value that reads as good or bad."""

    SATISFACTORY = "SATISFACTORY"
    CONDITIONAL = "CONDITIONAL"
    UNSATISFACTORY = "UNSATISFACTORY"


@dataclass(frozen=True, slots=True)
class InspectionFigures:
    """One inspection group (vehicle, driver, hazmat, iep). None means the upstream left it empty;
    `national_average` is None for Canada (not served) and for "N/A".
    """

    inspections: int | None
    out_of_service: int | None
    out_of_service_percent: Decimal | None
    national_average: Decimal | None = None


@dataclass(frozen=True, slots=True)
class UsInspections:
    vehicle: InspectionFigures | None
    driver: InspectionFigures | None
    hazmat: InspectionFigures | None
    iep: InspectionFigures | None


@dataclass(frozen=True, slots=True)
class CanadaInspections:
    vehicle: InspectionFigures | None
    driver: InspectionFigures | None


@dataclass(frozen=True, slots=True)
class Crashes:
    fatal: int | None
    injury: int | None
    tow: int | None
    total: int | None


@dataclass(frozen=True, slots=True)
class Mileage:
    """MCS-150 reported mileage and the year it covers."""

    mileage: int | None
    year: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One SAFER company snapshot, normalized: empty strings and "None" are None, percents Decimals,
    dates `date`s, lists tuples. Blocks the upstream left out are None (a DOT registered within a day
    may have only a name). The SAFER `url` is not kept: it says nothing about the carrier.
    """

    usdot: int
    legal_name: str | None = None
    dba_name: str | None = None
    entity_type: str | None = None
    operating_status: str | None = None
    out_of_service_date: date | None = None
    physical_address: str | None = None
    mailing_address: str | None = None
    phone: str | None = None
    state_carrier_id: str | None = None
    duns_number: str | None = None
    mc_mx_ff_numbers: str | None = None
    power_units: int | None = None
    drivers: int | None = None
    mcs_150_form_date: date | None = None
    mcs_150_mileage_year: Mileage | None = None
    operation_classification: tuple[str, ...] = ()
    carrier_operation: tuple[str, ...] = ()
    cargo_carried: tuple[str, ...] = ()
    us_inspections: UsInspections | None = None
    canada_inspections: CanadaInspections | None = None
    us_crashes: Crashes | None = None
    canada_crashes: Crashes | None = None
    safety_rating: SafetyRating | None = None
    safety_rating_date: date | None = None
    safety_review_date: date | None = None
    safety_type: str | None = None
    latest_update: date | None = None


@dataclass(frozen=True, slots=True)
class InspectionsFetch:
    """What one successful sync read: the snapshot of `dot` as retrieved at `retrieved_at` (aware).
    `upstream_as_of` is the snapshot's `latest_update` (midnight UTC), None when SAFER gave none.
    """

    dot: str
    retrieved_at: datetime
    upstream_as_of: datetime | None
    snapshot: Snapshot

    def __post_init__(self) -> None:
        if self.retrieved_at.tzinfo is None:
            raise ValueError("retrieved_at must be timezone-aware")

    @property
    def records(self) -> tuple[Snapshot, ...]:
        """The records of this fetch, for callers that treat every source alike: one snapshot."""
        return (self.snapshot,)


def as_of(snapshot: Snapshot) -> datetime | None:
    """The date the upstream says the snapshot describes: its `latest_update` at midnight UTC, or None."""
    if snapshot.latest_update is None:
        return None
    return datetime.combine(snapshot.latest_update, time(), tzinfo=UTC)
