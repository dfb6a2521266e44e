"""Pure SaferWebAPI logic: classify an answer (fmcsa README 5.5), normalize a carrier snapshot,
summarize and hash it, decide what a store write changes, and whether a failure is retried in
process or handed back to the bus. No I/O, no clock, no HTTP or database imports.

Numbers are exact: bodies are parsed with `fmcsa_events.decimals.loads` (a JSON number with a fraction is
a `Decimal`, never a float), percents are `Decimal` with all their decimals, stored and hashed as canonical
decimal text, and the out-of-service move is computed exactly (`decimals.difference`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import JsonValue

from fmcsa_events import decimals
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind, Counts, ErrorKind
from fmcsa_runtime.redaction import sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_kit.failures import Failure

# ---------------------------------------------------------------------------------------------------
# Records


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


# ---------------------------------------------------------------------------------------------------
# Classifying an answer (README 5.5)


def parse_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    dot: str,
    now: datetime,
    *,
    rate_limit_wait_s: float = 60.0,
    retry_after_max_s: float = 3600.0,
) -> InspectionsFetch | Failure:
    """Turn one `GET /v2/usdot/snapshot/{dot}` answer into a fetch or exactly one failure kind.

    `dot` is the canonical DOT that was requested; `now` (aware) becomes `retrieved_at` and dates a
    `Retry-After` given as an HTTP date. A 429 always carries `retry_after_s` (the header, clamped
    to `retry_after_max_s`, else `rate_limit_wait_s`). Details hold the status and a scrubbed body
    sample, never a header value.
    """
    if status in (401, 403):
        return Failure(
            ErrorKind.NOT_CONFIGURED,
            retryable=False,
            message="SaferWebAPI rejected the API key (wrong key or lapsed plan)",
            detail=_detail(status, body),
        )
    if status == 404:
        return Failure(
            ErrorKind.NOT_FOUND,
            retryable=False,
            message="SaferWebAPI knows no carrier with this USDOT number",
            detail=_detail(status, body),
        )
    if status == 429:
        header = _header(headers, "retry-after")
        wait = parse_retry_after(header, now=now, ceiling_s=retry_after_max_s)
        if wait is None:
            wait = min(rate_limit_wait_s, retry_after_max_s)
        return Failure(
            ErrorKind.RATE_LIMITED,
            retryable=True,
            message="SaferWebAPI rate limit reached",
            detail=f"{_detail(status, body)} retry-after={header!r}",
            retry_after_s=wait,
        )
    if 500 <= status <= 599:
        return Failure(
            ErrorKind.UPSTREAM_ERROR,
            retryable=True,
            message=f"SaferWebAPI answered {status}",
            detail=_detail(status, body),
            retry_after_s=parse_retry_after(
                _header(headers, "retry-after"), now=now, ceiling_s=retry_after_max_s
            ),
        )
    if status == 414:
        return Failure(
            ErrorKind.INTERNAL,
            retryable=False,
            message="the request URL was too long (a bug: a DOT path is short)",
            detail=_detail(status, body),
        )
    if not 200 <= status <= 299:
        return Failure(
            ErrorKind.UPSTREAM_ERROR,
            retryable=False,
            message=f"SaferWebAPI answered {status}",
            detail=_detail(status, body),
        )
    try:
        decoded = decimals.loads(body)  # numbers exactly: a JSON percent is a Decimal, never a float
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=True,  # a cut-short or non-JSON body may be transient
            message="SaferWebAPI answered with a body that is not JSON or is cut short",
            detail=_detail(status, body),
        )
    return parse_snapshot(decoded, dot=dot, retrieved_at=now)


def parse_snapshot(decoded: object, *, dot: str, retrieved_at: datetime) -> InspectionsFetch | Failure:
    """Normalize a decoded 200 body. `null`, `{}` or a body with neither `usdot` nor `legal_name` is
    `not_found`; a body of the wrong shape or for another DOT is `invalid_response` (not retryable);
    a snapshot with only a name and nulls elsewhere is a success. Unknown keys are ignored.
    """
    if decoded is None:
        return _not_found_in_body("null")
    if not isinstance(decoded, dict):
        return _wrong_shape(f"top level is {type(decoded).__name__}, not an object")
    if _is_empty(decoded.get("usdot")) and _is_empty(decoded.get("legal_name")):
        return _not_found_in_body(json.dumps(decoded, default=str))
    try:
        snapshot = _snapshot(decoded, fallback_usdot=int(dot))
    except ShapeError as error:
        return _wrong_shape(str(error))
    if snapshot.usdot != int(dot):
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=False,
            message="SaferWebAPI answered for another USDOT number",
            detail=f"requested {dot}, got usdot {snapshot.usdot}",
        )
    as_of = None
    if snapshot.latest_update is not None:
        as_of = datetime.combine(snapshot.latest_update, time(), tzinfo=UTC)
    return InspectionsFetch(dot=dot, retrieved_at=retrieved_at, upstream_as_of=as_of, snapshot=snapshot)


def _detail(status: int, body: bytes) -> str:
    return f"HTTP {status}: {sample(body)}" if body else f"HTTP {status}: (empty body)"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():  # plain dicts are not case-insensitive like httpx.Headers
        if key.lower() == name:
            return candidate
    return None


def _not_found_in_body(shown: str) -> Failure:
    return Failure(
        ErrorKind.NOT_FOUND,
        retryable=False,
        message="SaferWebAPI answered with an empty snapshot (no such carrier)",
        detail=f"HTTP 200: {sample(shown)}",
    )


def _wrong_shape(why: str) -> Failure:
    return Failure(
        ErrorKind.INVALID_RESPONSE,
        retryable=False,
        message="SaferWebAPI answered with a snapshot of an unexpected shape",
        detail=sample(why, limit=300),
    )


# ---------------------------------------------------------------------------------------------------
# Normalizing fields (README 5.2)


class ShapeError(ValueError):
    """A field of the snapshot has a type or format the client does not accept."""

    def __init__(self, where: str, raw: object, expected: str) -> None:
        super().__init__(f"{where}: expected {expected}, got {sample(repr(raw), limit=60)}")


_EMPTY = frozenset({"", "None", "none", "NONE", "null"})
_NOT_AVAILABLE = frozenset({"N/A", "NA", "n/a"})
_US_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?")
_DIGITS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+")


def _is_empty(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() in _EMPTY)


def _count(raw: object, where: str) -> int | None:
    """An int, or a digit string (thousands commas allowed); null, "" or "None" is None."""
    if _is_empty(raw):
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and _DIGITS.fullmatch(raw.strip()):
        return int(raw.strip().replace(",", ""))
    raise ShapeError(where, raw, "a non-negative integer or digit string")


def _percent(raw: object, where: str) -> Decimal | None:
    """Percent text to Decimal, exactly: "13.33%" gives 13.33; "N/A", null and "" give None; JSON
    numbers (int, or Decimal from `decimals.loads`) pass. A float is refused: it could not be exact.
    """
    if _is_empty(raw):
        return None
    value: Decimal | None = None
    if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        value = Decimal(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if text in _NOT_AVAILABLE:
            return None
        if match := _PERCENT.fullmatch(text):
            value = Decimal(match.group(1))
    if value is not None and value.is_finite() and value >= 0:
        try:
            return decimals.exact(value)
        except ValueError:
            pass  # more digits than can be stored: a wrong shape
    raise ShapeError(where, raw, 'a percent like "13.33%" or "N/A"')


def _us_date(raw: object, where: str) -> date | None:
    """`MM/DD/YYYY` -> date; null, "" or "None" -> None."""
    if _is_empty(raw):
        return None
    if isinstance(raw, str) and (match := _US_DATE.fullmatch(raw.strip())):
        month, day, year = (int(part) for part in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            pass
    raise ShapeError(where, raw, "a date MM/DD/YYYY")


def _name(raw: object, where: str) -> str | None:
    """A name or address: whitespace-trimmed; "" is None (a name literally "None" is kept)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.strip() or None
    raise ShapeError(where, raw, "a string")


def _code(raw: object, where: str) -> str | None:
    """A short code or label: trimmed; null, "" and "None" are None; a bare number becomes its digits."""
    if _is_empty(raw):
        return None
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    raise ShapeError(where, raw, "a string")


def _labels(raw: object, where: str) -> tuple[str, ...]:
    """An array of strings (SAFER's checked boxes); null is empty; blank entries are dropped."""
    if raw is None:
        return ()
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(item.strip() for item in raw if item.strip())
    raise ShapeError(where, raw, "an array of strings")


def _object(raw: object, where: str) -> Mapping[str, Any] | None:
    if _is_empty(raw):
        return None
    if isinstance(raw, dict):
        return raw
    raise ShapeError(where, raw, "an object")


def _figures(raw: object, where: str, *, with_average: bool) -> InspectionFigures | None:
    block = _object(raw, where)
    if block is None:
        return None
    return InspectionFigures(
        inspections=_count(block.get("inspections"), f"{where}.inspections"),
        out_of_service=_count(block.get("out_of_service"), f"{where}.out_of_service"),
        out_of_service_percent=_percent(
            block.get("out_of_service_percent"), f"{where}.out_of_service_percent"
        ),
        national_average=(
            _percent(block.get("national_average"), f"{where}.national_average") if with_average else None
        ),
    )


def _us_inspections(body: Mapping[str, Any]) -> UsInspections | None:
    # Both spellings are served (which one v2 uses today is unverified); the short one wins.
    key = "us_inspections" if not _is_empty(body.get("us_inspections")) else "united_states_inspections"
    block = _object(body.get(key), key)
    if block is None:
        return None
    return UsInspections(
        **{
            g: _figures(block.get(g), f"{key}.{g}", with_average=True)
            for g in ("vehicle", "driver", "hazmat", "iep")
        }
    )


def _canada_inspections(body: Mapping[str, Any]) -> CanadaInspections | None:
    block = _object(body.get("canada_inspections"), "canada_inspections")
    if block is None:
        return None
    return CanadaInspections(
        **{
            g: _figures(block.get(g), f"canada_inspections.{g}", with_average=False)
            for g in ("vehicle", "driver")
        }
    )


def _crashes(raw: object, where: str) -> Crashes | None:
    block = _object(raw, where)
    if block is None:
        return None
    return Crashes(**{k: _count(block.get(k), f"{where}.{k}") for k in ("fatal", "injury", "tow", "total")})


def _mileage(raw: object) -> Mileage | None:
    block = _object(raw, "mcs_150_mileage_year")
    if block is None:
        return None
    mileage = Mileage(
        mileage=_count(block.get("mileage"), "mcs_150_mileage_year.mileage"),
        year=_count(block.get("year"), "mcs_150_mileage_year.year"),
    )
    return None if mileage == Mileage(None, None) else mileage


def _safety_rating(raw: object) -> SafetyRating | None:
    if _is_empty(raw):
        return None
    if isinstance(raw, str):
        try:
            return SafetyRating(raw.strip().upper())
        except ValueError:
            pass
    raise ShapeError("safety_rating", raw, "SATISFACTORY, CONDITIONAL, UNSATISFACTORY or null")


def _snapshot(body: Mapping[str, Any], *, fallback_usdot: int) -> Snapshot:
    usdot = _count(body.get("usdot"), "usdot")
    return Snapshot(
        usdot=fallback_usdot if usdot is None else usdot,  # a name-only snapshot may lack its usdot
        legal_name=_name(body.get("legal_name"), "legal_name"),
        dba_name=_name(body.get("dba_name"), "dba_name"),
        entity_type=_code(body.get("entity_type"), "entity_type"),
        operating_status=_code(body.get("operating_status"), "operating_status"),
        out_of_service_date=_us_date(body.get("out_of_service_date"), "out_of_service_date"),
        physical_address=_name(body.get("physical_address"), "physical_address"),
        mailing_address=_name(body.get("mailing_address"), "mailing_address"),
        phone=_code(body.get("phone"), "phone"),
        state_carrier_id=_code(body.get("state_carrier_id"), "state_carrier_id"),
        duns_number=_code(body.get("duns_number"), "duns_number"),
        mc_mx_ff_numbers=_code(body.get("mc_mx_ff_numbers"), "mc_mx_ff_numbers"),
        power_units=_count(body.get("power_units"), "power_units"),
        drivers=_count(body.get("drivers"), "drivers"),
        mcs_150_form_date=_us_date(body.get("mcs_150_form_date"), "mcs_150_form_date"),
        mcs_150_mileage_year=_mileage(body.get("mcs_150_mileage_year")),
        operation_classification=_labels(body.get("operation_classification"), "operation_classification"),
        carrier_operation=_labels(body.get("carrier_operation"), "carrier_operation"),
        cargo_carried=_labels(body.get("cargo_carried"), "cargo_carried"),
        us_inspections=_us_inspections(body),
        canada_inspections=_canada_inspections(body),
        us_crashes=_crashes(body.get("united_states_crashes"), "united_states_crashes"),
        canada_crashes=_crashes(body.get("canada_crashes"), "canada_crashes"),
        safety_rating=_safety_rating(body.get("safety_rating")),
        safety_rating_date=_us_date(body.get("safety_rating_date"), "safety_rating_date"),
        safety_review_date=_us_date(body.get("safety_review_date"), "safety_review_date"),
        safety_type=_code(body.get("safety_type"), "safety_type"),
        latest_update=_us_date(body.get("latest_update"), "latest_update"),
    )


# ---------------------------------------------------------------------------------------------------
# Content, hashing, summary


def decimal_text(value: Decimal) -> str:
    """Canonical text of a Decimal: "16.670" and "16.67" both give "16.67"; never an exponent, never
    rounded (`fmcsa_events.decimals.text`).
    """
    return decimals.text(value)


def _figures_content(figures: InspectionFigures | None) -> JsonValue:
    if figures is None:
        return None
    return {
        "inspections": figures.inspections,
        "out_of_service": figures.out_of_service,
        "out_of_service_percent": _opt_decimal(figures.out_of_service_percent),
        "national_average": _opt_decimal(figures.national_average),
    }


def _crashes_content(crashes: Crashes | None) -> JsonValue:
    if crashes is None:
        return None
    return {"fatal": crashes.fatal, "injury": crashes.injury, "tow": crashes.tow, "total": crashes.total}


def _opt_decimal(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _opt_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _us_content(block: UsInspections | None) -> JsonValue:
    if block is None:
        return None
    return {g: _figures_content(getattr(block, g)) for g in ("vehicle", "driver", "hazmat", "iep")}


def _canada_content(block: CanadaInspections | None) -> JsonValue:
    if block is None:
        return None
    return {g: _figures_content(getattr(block, g)) for g in ("vehicle", "driver")}


def snapshot_content(snapshot: Snapshot) -> dict[str, JsonValue]:
    """The snapshot as JSON-ready values (Decimals as canonical strings, dates ISO); what is hashed
    and stored. `snapshot_from_content` reverses it exactly.
    """
    mileage = snapshot.mcs_150_mileage_year
    return {
        "usdot": snapshot.usdot,
        "legal_name": snapshot.legal_name,
        "dba_name": snapshot.dba_name,
        "entity_type": snapshot.entity_type,
        "operating_status": snapshot.operating_status,
        "out_of_service_date": _opt_date(snapshot.out_of_service_date),
        "physical_address": snapshot.physical_address,
        "mailing_address": snapshot.mailing_address,
        "phone": snapshot.phone,
        "state_carrier_id": snapshot.state_carrier_id,
        "duns_number": snapshot.duns_number,
        "mc_mx_ff_numbers": snapshot.mc_mx_ff_numbers,
        "power_units": snapshot.power_units,
        "drivers": snapshot.drivers,
        "mcs_150_form_date": _opt_date(snapshot.mcs_150_form_date),
        "mcs_150_mileage_year": None
        if mileage is None
        else {"mileage": mileage.mileage, "year": mileage.year},
        "operation_classification": list(snapshot.operation_classification),
        "carrier_operation": list(snapshot.carrier_operation),
        "cargo_carried": list(snapshot.cargo_carried),
        "us_inspections": _us_content(snapshot.us_inspections),
        "canada_inspections": _canada_content(snapshot.canada_inspections),
        "us_crashes": _crashes_content(snapshot.us_crashes),
        "canada_crashes": _crashes_content(snapshot.canada_crashes),
        "safety_rating": None if snapshot.safety_rating is None else snapshot.safety_rating.value,
        "safety_rating_date": _opt_date(snapshot.safety_rating_date),
        "safety_review_date": _opt_date(snapshot.safety_review_date),
        "safety_type": snapshot.safety_type,
        "latest_update": _opt_date(snapshot.latest_update),
    }


def content_hash(snapshot: Snapshot) -> str:
    """SHA-256 (hex) of the normalized content: equal for snapshots that say the same thing, whatever
    spelling, number type or percent format the upstream used. `url` and fetch times are not in it.
    """
    canonical = json.dumps(
        snapshot_content(snapshot), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _from_figures(raw: Any) -> InspectionFigures | None:
    if raw is None:
        return None
    return InspectionFigures(
        inspections=raw["inspections"],
        out_of_service=raw["out_of_service"],
        out_of_service_percent=_to_decimal(raw["out_of_service_percent"]),
        national_average=_to_decimal(raw["national_average"]),
    )


def _to_decimal(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(raw)


def _to_date(raw: Any) -> date | None:
    return None if raw is None else date.fromisoformat(raw)


def _to_crashes(raw: Any) -> Crashes | None:
    return None if raw is None else Crashes(raw["fatal"], raw["injury"], raw["tow"], raw["total"])


def snapshot_from_content(content: Mapping[str, Any]) -> Snapshot:
    """Rebuild a Snapshot from `snapshot_content` output (as stored); raises KeyError/ValueError on
    anything else.
    """
    us, canada, mileage = (
        content["us_inspections"],
        content["canada_inspections"],
        content["mcs_150_mileage_year"],
    )
    rating = content["safety_rating"]
    return Snapshot(
        usdot=int(content["usdot"]),
        legal_name=content["legal_name"],
        dba_name=content["dba_name"],
        entity_type=content["entity_type"],
        operating_status=content["operating_status"],
        out_of_service_date=_to_date(content["out_of_service_date"]),
        physical_address=content["physical_address"],
        mailing_address=content["mailing_address"],
        phone=content["phone"],
        state_carrier_id=content["state_carrier_id"],
        duns_number=content["duns_number"],
        mc_mx_ff_numbers=content["mc_mx_ff_numbers"],
        power_units=content["power_units"],
        drivers=content["drivers"],
        mcs_150_form_date=_to_date(content["mcs_150_form_date"]),
        mcs_150_mileage_year=None if mileage is None else Mileage(mileage["mileage"], mileage["year"]),
        operation_classification=tuple(content["operation_classification"]),
        carrier_operation=tuple(content["carrier_operation"]),
        cargo_carried=tuple(content["cargo_carried"]),
        us_inspections=None
        if us is None
        else UsInspections(**{g: _from_figures(us[g]) for g in ("vehicle", "driver", "hazmat", "iep")}),
        canada_inspections=None
        if canada is None
        else CanadaInspections(**{g: _from_figures(canada[g]) for g in ("vehicle", "driver")}),
        us_crashes=_to_crashes(content["us_crashes"]),
        canada_crashes=_to_crashes(content["canada_crashes"]),
        safety_rating=None if rating is None else SafetyRating(rating),
        safety_rating_date=_to_date(content["safety_rating_date"]),
        safety_review_date=_to_date(content["safety_review_date"]),
        safety_type=content["safety_type"],
        latest_update=_to_date(content["latest_update"]),
    )


def summarize(fetch: InspectionsFetch) -> dict[str, JsonValue]:
    """The compact view the status page shows: US and Canada inspection and out-of-service figures
    per group, crashes, operating status and safety rating. Decimals as strings, dates ISO; a block
    the upstream left empty is None, never zeros.
    """
    snapshot = fetch.snapshot
    return {
        "usdot": str(snapshot.usdot),
        "legal_name": snapshot.legal_name,
        "operating_status": snapshot.operating_status,
        "out_of_service_date": _opt_date(snapshot.out_of_service_date),
        "safety_rating": None if snapshot.safety_rating is None else snapshot.safety_rating.value,
        "safety_rating_date": _opt_date(snapshot.safety_rating_date),
        "latest_update": _opt_date(snapshot.latest_update),
        "us_inspections": _us_content(snapshot.us_inspections),
        "canada_inspections": _canada_content(snapshot.canada_inspections),
        "us_crashes": _crashes_content(snapshot.us_crashes),
        "canada_crashes": _crashes_content(snapshot.canada_crashes),
    }


# ---------------------------------------------------------------------------------------------------
# Change detection


Change = Literal["inserted", "updated", "unchanged", "stale"]


def decide_change(
    held_hash: str | None, held_retrieved_at: datetime | None, new_hash: str, new_retrieved_at: datetime
) -> Change:
    """What storing a fetch does to the one current snapshot of a carrier: `inserted` (none held),
    `unchanged` (same hash), `updated` (other hash, fetched no earlier than what is held), or `stale`
    (other hash but fetched before what is held: kept as a version, the current one stays).
    """
    if held_hash is None:
        return "inserted"
    if held_hash == new_hash:
        return "unchanged"
    if held_retrieved_at is not None and new_retrieved_at < held_retrieved_at:
        return "stale"
    return "updated"


def counts_for(change: Change) -> Counts:
    """Counts of one fetch (one snapshot): a stale write changed nothing current, so it is unchanged."""
    match change:
        case "inserted":
            return Counts(fetched=1, inserted=1)
        case "updated":
            return Counts(fetched=1, updated=1)
        case _:
            return Counts(fetched=1, unchanged=1)


DEFAULT_OOS_RATE_CHANGE_POINTS = Decimal(5)
"""How far (percentage points) a US out-of-service rate must move to be a change fact, by default."""


def _status_state(snapshot: Snapshot) -> JsonValue:
    return {
        "status": snapshot.operating_status,
        "out_of_service_date": _opt_date(snapshot.out_of_service_date),
    }


def _rating_state(snapshot: Snapshot) -> JsonValue:
    rating = None if snapshot.safety_rating is None else snapshot.safety_rating.value
    return {"rating": rating, "rating_date": _opt_date(snapshot.safety_rating_date)}


def _oos_state(figures: InspectionFigures) -> JsonValue:
    return {
        "percent": _opt_decimal(figures.out_of_service_percent),
        "inspections": figures.inspections,
        "out_of_service": figures.out_of_service,
        "national_average": _opt_decimal(figures.national_average),
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
            facts.append((ChangeKind.CRASHES_ADDED, subject, _crashes_content(was), _crashes_content(now)))
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
# Retrying


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failures are retried: a few short waits in process, everything longer through the bus."""

    inline_retries: int = 2
    inline_wait_max_s: float = 5.0
    backoff_initial_s: float = 0.5
    retry_after_max_s: float = 3600.0

    def backoff_ceiling_s(self, retry: int) -> float:
        """Upper bound of the backoff before retry number `retry` (1-based): doubling, capped."""
        return min(self.retry_after_max_s, self.backoff_initial_s * 2.0 ** max(0, retry - 1))


def inline_wait_s(failure: Failure, *, retry: int, policy: RetryPolicy, jitter: float) -> float | None:
    """Seconds to wait before in-process retry number `retry` (1-based), or None to hand the failure
    back. `jitter` in [0, 1) draws the full-jitter backoff when the upstream named no wait. Never
    retried in process: non-retryable failures, timeouts (a hung call already spent the read
    timeout; the bus redelivers it), waits over `inline_wait_max_s`, and retries past the budget.
    """
    if not failure.retryable or failure.kind is ErrorKind.TIMEOUT or retry > policy.inline_retries:
        return None
    if failure.retry_after_s is not None:
        wait = failure.retry_after_s
    else:
        wait = jitter * min(policy.backoff_ceiling_s(retry), policy.inline_wait_max_s)
    return wait if wait <= policy.inline_wait_max_s else None


def handed_back(failure: Failure, *, retry: int, policy: RetryPolicy) -> Failure:
    """The failure as `fetch` returns it: a retryable one always names the delay before the next
    delivery (the upstream's wait if it gave one, else the next backoff ceiling).
    """
    if not failure.retryable or failure.retry_after_s is not None:
        return failure
    return replace(failure, retry_after_s=policy.backoff_ceiling_s(retry))
