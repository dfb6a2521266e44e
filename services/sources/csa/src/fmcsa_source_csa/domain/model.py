"""The csa domain's values: QCMobile's carrier facts and BASIC scores, normalized, and their hashes.

Guarantees:
- A percentile is a `Decimal` in 0..100 only when upstream published one; every other answer is `None`
  with a `PercentileStatus` saying why. Flags are `True`/`False`, or `None` with a reason; a hidden
  value never reads as 0 or as "no alert".
- The carrier's `ein` (a tax id) is never a field of any value.
- Hashes cover normalized values only (`Decimal("0.50")` and `"0.5"` hash alike) and never the
  retrieval time, so the same data fetched twice hashes the same; labels are not hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import JsonValue, TypeAdapter

from fmcsa_events import decimals


class Call(StrEnum):
    """The two QCMobile calls of one sync, in the order they are made."""

    CARRIER = "carrier"
    BASICS = "basics"


class PercentileStatus(StrEnum):
    """Why a BASIC has, or lacks, a percentile."""

    PUBLIC = "public"
    NOT_PUBLIC = "not_public"
    INCONCLUSIVE = "inconclusive"
    NO_VIOLATIONS = "no_violations"
    INSUFFICIENT_DATA = "insufficient_data"
    MISSING = "missing"
    UNRECOGNIZED = "unrecognized"


class FlagReason(StrEnum):
    """Why a flag has no value."""

    NOT_PUBLIC = "not_public"
    MISSING = "missing"
    UNRECOGNIZED = "unrecognized"


class SafetyRating(StrEnum):
    """An FMCSA safety rating; a carrier without one has `None` (not rated)."""

    SATISFACTORY = "S"
    CONDITIONAL = "C"
    UNSATISFACTORY = "U"


class AuthorityStatus(StrEnum):
    """Status of one operating authority (common, contract, broker)."""

    ACTIVE = "A"
    INACTIVE = "I"
    NONE = "N"


@dataclass(frozen=True, slots=True)
class Flag:
    """A Y/N indicator: `value` is None exactly when `reason` says why."""

    value: bool | None
    reason: FlagReason | None = None


@dataclass(frozen=True, slots=True)
class BasicScore:
    """One BASIC of one carrier, normalized; keyed by (`dot`, `basics_id`)."""

    basics_id: int
    code: str | None
    name: str | None
    percentile: Decimal | None
    percentile_status: PercentileStatus
    measure: Decimal | None
    threshold: int | None
    intervention_alert: Flag
    on_road_alert: Flag
    serious_violation: Flag
    inspections_with_violation: int | None
    violations: int | None
    run_date: datetime | None

    def content(self) -> dict[str, JsonValue]:
        """Return the fields whose change is a change of the record (fmcsa README 3.7), labels excluded."""
        return {
            "basics_id": self.basics_id,
            "percentile": decimal_text(self.percentile),
            "percentile_status": self.percentile_status.value,
            "measure": decimal_text(self.measure),
            "threshold": self.threshold,
            "intervention_alert": _flag_json(self.intervention_alert),
            "on_road_alert": _flag_json(self.on_road_alert),
            "serious_violation": _flag_json(self.serious_violation),
            "inspections_with_violation": self.inspections_with_violation,
            "violations": self.violations,
            "run_date": self.run_date.isoformat() if self.run_date else None,
        }

    def content_hash(self) -> str:
        return stable_hash(self.content())


@dataclass(frozen=True, slots=True)
class CarrierFacts:
    """The carrier object of `/carriers/{dot}`, normalized; `ein` is deliberately absent.

    Counts are 24-month figures (unverified); OOS rates are percents 0-100; insurance amounts are
    thousands of dollars. Every field may be None: upstream omits fields without notice.
    """

    dot_number: int
    legal_name: str | None = None
    dba_name: str | None = None
    status_code: str | None = None
    allowed_to_operate: bool | None = None
    out_of_service_date: date | None = None
    mcs150_outdated: bool | None = None
    is_passenger_carrier: bool | None = None
    carrier_operation_code: str | None = None
    carrier_operation_desc: str | None = None
    census_type: str | None = None
    census_type_desc: str | None = None
    total_power_units: int | None = None
    total_drivers: int | None = None
    driver_inspections: int | None = None
    driver_oos_inspections: int | None = None
    driver_oos_rate: Decimal | None = None
    driver_oos_rate_national_average: Decimal | None = None
    vehicle_inspections: int | None = None
    vehicle_oos_inspections: int | None = None
    vehicle_oos_rate: Decimal | None = None
    vehicle_oos_rate_national_average: Decimal | None = None
    hazmat_inspections: int | None = None
    hazmat_oos_inspections: int | None = None
    hazmat_oos_rate: Decimal | None = None
    hazmat_oos_rate_national_average: Decimal | None = None
    oos_rate_national_average_year: str | None = None
    crash_total: int | None = None
    fatal_crashes: int | None = None
    injury_crashes: int | None = None
    towaway_crashes: int | None = None
    safety_rating: SafetyRating | None = None
    safety_rating_date: date | None = None
    safety_review_date: date | None = None
    safety_review_type: str | None = None
    review_date: date | None = None
    review_type: str | None = None
    common_authority: AuthorityStatus | None = None
    contract_authority: AuthorityStatus | None = None
    broker_authority: AuthorityStatus | None = None
    bipd_insurance_required: bool | None = None
    bipd_required_amount: int | None = None
    bipd_insurance_on_file: int | None = None
    cargo_insurance_required: bool | None = None
    cargo_insurance_on_file: int | None = None
    bond_insurance_required: bool | None = None
    bond_insurance_on_file: int | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zipcode: str | None = None
    country: str | None = None

    def content(self) -> dict[str, JsonValue]:
        """Return every normalized field as JSON values (Decimals as canonical text, dates ISO)."""
        dumped: dict[str, JsonValue] = _CARRIER_ADAPTER.dump_python(self, mode="json")
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Decimal):  # pydantic writes str(): "1E-7" for 0.0000001
                dumped[field.name] = decimals.text(value)
        return dumped

    def content_hash(self) -> str:
        return stable_hash(self.content())


_CARRIER_ADAPTER: Final = TypeAdapter(CarrierFacts)


def carrier_from_content(content: Mapping[str, Any]) -> CarrierFacts:
    """Rebuild `CarrierFacts` from `CarrierFacts.content()` (as a store keeps it)."""
    return _CARRIER_ADAPTER.validate_python(dict(content))


@dataclass(frozen=True, slots=True)
class BasicsAnswer:
    """What one `/basics` answer held: the scores and the upstream's retrieval time.

    `notes` name values that were accepted but not recognized (worth a log line, not a failure).
    """

    basics: tuple[BasicScore, ...]
    retrieval_date: datetime | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CsaFetch:
    """One successful csa sync of one carrier: its facts and its BASICs (possibly none)."""

    dot: str
    retrieved_at: datetime
    upstream_as_of: datetime | None
    carrier: CarrierFacts
    basics: tuple[BasicScore, ...]
    notes: tuple[str, ...] = ()

    @property
    def record_count(self) -> int:
        """Records this fetch holds: every BASIC plus the carrier profile."""
        return len(self.basics) + 1


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else decimals.text(value)


def stable_hash(content: Mapping[str, JsonValue]) -> str:
    """Hash canonical JSON (SHA-256, sorted keys, no spaces): equal content, equal hash, any host."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _flag_json(flag: Flag) -> JsonValue:
    return {"value": flag.value, "reason": flag.reason.value if flag.reason else None}
