"""Pure CSA logic: classify QCMobile answers, normalize carrier facts and BASIC scores, summarize, hash.

Nothing here does I/O or reads a clock: answers come in as (status, headers, body bytes, requested
DOT, now) and leave as frozen values or one `Failure` (fmcsa README 3.9, checked in that order:
429, JSON parse, `content`, status; transport errors are the client's).

Guarantees:
- A percentile is a `Decimal` in 0..100 only when upstream published one (`"57%"`); every other
  answer is `None` with a `PercentileStatus` saying why (`not_public`, `inconclusive`, `no_violations`,
  `insufficient_data`, `missing`, `unrecognized`). Flags are `True`/`False`, or `None` with a reason;
  a hidden value never reads as 0 or as "no alert".
- Labels are unescaped (`&#8203;`), without U+200B, U+FEFF or U+00AD, spaces collapsed; records are
  keyed on `basicsId`, never on a label.
- The carrier's `ein` (a tax id) is never read into any value; unknown keys are ignored.
- `basicsRunDate` is kept (and hashed, as the fmcsa README 3.7 asks) but never used for freshness
  or in a key: it has been frozen at 2017-01-27 in every recording.
- Numbers are exact: bodies are parsed with `fmcsa_events.decimals.loads`, so a JSON number with
  a fraction (QCMobile's OOS rates carry up to 38 decimals) is a `Decimal`, never a float; numeric
  and percent strings become `Decimal` too. Nothing is rounded: a number beyond 18 integer digits
  or 50 decimals, or not finite, is `invalid_response`.
- Hashes cover normalized values only (`Decimal("0.50")` and `"0.5"` hash alike) and never the
  retrieval time, so the same data fetched twice hashes the same.

`upstream_as_of` (what the data describes: "the SMS run month") is the first instant
(00:00 UTC) of the calendar month of the `/basics` answer's `retrievalDate`, or of `now` when that is
absent or unreadable. QCMobile serves no usable run date (`basicsRunDate` is frozen) and the README
knows nothing better. The SMS snapshot is taken on the third or last Friday and published 10-18 days
later, so early in a month the data served may still be the previous month's run: this value is the
month in which we observed the snapshot, an upper bound on the run month, and it never goes backwards.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, TypeVar
from uuid import UUID

from pydantic import JsonValue, TypeAdapter

from fmcsa_events import decimals
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind, ErrorKind
from fmcsa_runtime.redaction import redact, sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_kit.failures import Failure

MAINTENANCE_TITLE: Final = b"FMCSA System Maintenance Page"
_Code = TypeVar("_Code", bound=StrEnum)


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
            "percentile": _decimal_text(self.percentile),
            "percentile_status": self.percentile_status.value,
            "measure": _decimal_text(self.measure),
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


class _ShapeError(Exception):
    """Raised inside this module for well-formed JSON of the wrong shape; becomes `invalid_response`."""


# --- normalization of single values ---------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\ufeff\u00ad"))
_PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]+)?)\s*%")
_PERCENTILE_WORDS: Final = {
    "not public": PercentileStatus.NOT_PUBLIC,
    "inconclusive": PercentileStatus.INCONCLUSIVE,
    "no violations": PercentileStatus.NO_VIOLATIONS,
    "insufficient data": PercentileStatus.INSUFFICIENT_DATA,
}
_NOT_PUBLIC_FLAGS: Final = {"-1", "not public"}


def normalize_label(value: str) -> str:
    """Unescape HTML entities, drop zero-width space, BOM and soft hyphen, collapse whitespace."""
    return " ".join(html.unescape(value).translate(_INVISIBLE).split())


def _words(value: str) -> str:
    return " ".join(value.replace("_", " ").lower().split())


def parse_percentile(value: object) -> tuple[Decimal | None, PercentileStatus]:
    """Read `basicsPercentile`: `"57%"` -> (57, public), never a 0 for a hidden value.

    The documented words -> (None, their status); absent -> missing; anything else -> unrecognized.
    A percent above 100 is a wrong shape (raises).
    """
    if value is None:
        return None, PercentileStatus.MISSING
    if not isinstance(value, str):
        return None, PercentileStatus.UNRECOGNIZED
    text = normalize_label(value)
    if not text:
        return None, PercentileStatus.MISSING
    if match := _PERCENT.fullmatch(text):
        try:
            number = canonical_decimal(Decimal(match.group(1)))
        except ValueError as error:
            raise _ShapeError(f"basicsPercentile {text!r}: {error}") from None
        if number > 100:
            raise _ShapeError(f"basicsPercentile {text!r} is above 100%")
        return number, PercentileStatus.PUBLIC
    status = _PERCENTILE_WORDS.get(_words(text))
    return (None, status) if status else (None, PercentileStatus.UNRECOGNIZED)


def parse_flag(value: object) -> Flag:
    """Read a Y/N indicator: `"Y"` -> True, `"N"` -> False, otherwise None with a reason.

    `"-1"` or `"Not Public"` -> not_public; absent or empty -> missing; anything else -> unrecognized.
    """
    if value is None:
        return Flag(None, FlagReason.MISSING)
    if not isinstance(value, str):
        return Flag(None, FlagReason.UNRECOGNIZED)
    text = _words(normalize_label(value))
    if text == "y":
        return Flag(True)
    if text == "n":
        return Flag(False)
    if text in _NOT_PUBLIC_FLAGS:
        return Flag(None, FlagReason.NOT_PUBLIC)
    if not text:
        return Flag(None, FlagReason.MISSING)
    return Flag(None, FlagReason.UNRECOGNIZED)


def canonical_decimal(value: Decimal) -> Decimal:
    """Spell a number one way without rounding it: `0.50` -> `0.5`, `1E+1` -> `10`, `-0` -> `0`.

    Raises ValueError for a value that is not finite or beyond `fmcsa_events.decimals`' bounds.
    """
    return decimals.exact(value)


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else decimals.text(value)


def _decimal(value: object, name: str, *, nonnegative: bool = True) -> Decimal | None:
    """A JSON number (int, or `Decimal` from `decimals.loads`) or a numeric string, exactly.

    A float is refused: it could not be exact (the parser never makes one).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _ShapeError(f"{name} is not a number: {_show(value)}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise _ShapeError(f"{name} is not a number: {_show(value)}") from None
    if not number.is_finite() or (nonnegative and number < 0):
        raise _ShapeError(f"{name} is out of range: {_show(value)}")
    try:
        return canonical_decimal(number)
    except ValueError as error:
        raise _ShapeError(f"{name} is out of range ({error}): {_show(value)}") from None


def _int(value: object, name: str) -> int | None:
    number = _decimal(value, name)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise _ShapeError(f"{name} is not a whole number: {_show(value)}")
    return int(number)


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _ShapeError(f"{name} is not text: {_show(value)}")
    return normalize_label(str(value)) or None


def _yes_no(value: object, name: str, *, unknown: frozenset[str] = frozenset()) -> bool | None:
    text = _text(value, name)
    if text is None:
        return None
    upper = text.upper()
    if upper in ("Y", "N"):
        return upper == "Y"
    if upper in unknown:
        return None
    raise _ShapeError(f"{name} is not Y or N: {_show(value)}")


_DATE_FORMATS: Final = ("%Y-%m-%d", "%m/%d/%Y")


def _date(value: object, name: str) -> date | None:
    text = _text(value, name)
    if text is None:
        return None
    for layout in _DATE_FORMATS:
        try:
            return datetime.strptime(text[:10], layout).date()
        except ValueError:
            continue
    raise _ShapeError(f"{name} is not a date: {_show(value)}")


def parse_timestamp(value: object) -> datetime | None:
    """Read a QCMobile timestamp (`2025-11-04T14:12:08.317+0000`) as aware UTC; None if unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _code(value: object, name: str, kind: type[_Code]) -> _Code | None:
    text = _text(value, name)
    if text is None:
        return None
    try:
        return kind(text.upper())
    except ValueError:
        raise _ShapeError(f"{name} has an unknown code: {_show(value)}") from None


def _show(value: object) -> str:
    return redact(repr(value))[:60]


def _object(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _ShapeError(f"{name} is not an object")
    return value


# --- classification of one answer -----------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


_EIN = re.compile(rb'"ein"\s*:\s*"?[0-9-]*"?')


def _detail(call: Call, status: int, body: bytes, note: str = "") -> str:
    parts = [f"call={call.value}", f"status={status}"]
    if note:
        parts.append(redact(note))
    # The carrier body holds a tax id (`ein`): never let even a sample of it out.
    scrubbed = _EIN.sub(b'"ein":"***"', body)
    parts.append(f"body={sample(scrubbed)}")
    return "; ".join(parts)


def classify(
    call: Call,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    dot: str,
    now: datetime,
    *,
    retry_after_max_s: float = 3600.0,
) -> dict[str, Any] | Failure:
    """Return the JSON envelope of a usable answer, or the `Failure` it stands for (README 3.9).

    Order: 429, JSON parse, `content`, status. `content` is read before the status because
    "Webkey not found" comes as a 404 and would otherwise pass for an unknown carrier.
    """
    if status == 429:
        wait = parse_retry_after(_header(headers, "Retry-After"), now=now, ceiling_s=retry_after_max_s)
        return Failure(
            ErrorKind.RATE_LIMITED,
            retryable=True,
            message="QCMobile rate limit hit (HTTP 429)",
            detail=_detail(call, status, body, f"retry_after={wait}"),
            retry_after_s=wait,
        )
    try:
        envelope = decimals.loads(body)  # numbers exactly: OOS rates come with up to 38 decimals
    except (ValueError, RecursionError):
        return _not_json(call, status, body)
    if isinstance(envelope, dict) and "content" in envelope:
        content = envelope["content"]
        if isinstance(content, str):
            return _content_text(call, status, body, content)
        if (content is None or content == []) and call is Call.CARRIER and status in (200, 404):
            return Failure(
                ErrorKind.NOT_FOUND,
                retryable=False,
                message=f"QCMobile knows no carrier with USDOT number {dot}",
                detail=_detail(call, status, body),
            )
        if content is None and call is Call.BASICS and status in (200, 404):
            # The carrier was found a moment ago; a vanished carrier is still "not found".
            return Failure(
                ErrorKind.NOT_FOUND,
                retryable=False,
                message=f"QCMobile has no BASICs resource for USDOT number {dot}",
                detail=_detail(call, status, body),
            )
    if status >= 300 or status < 200:
        return _bad_status(call, status, body)
    if not isinstance(envelope, dict) or "content" not in envelope:
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=False,
            message="QCMobile answered JSON without a `content` envelope",
            detail=_detail(call, status, body),
        )
    return envelope


def _not_json(call: Call, status: int, body: bytes) -> Failure:
    if MAINTENANCE_TITLE in body:
        return Failure(
            ErrorKind.UPSTREAM_ERROR,
            retryable=True,
            message="QCMobile is down for maintenance",
            detail=_detail(call, status, body),
        )
    if 200 <= status < 300:
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=True,
            message="QCMobile answered a body that is not JSON or is cut short",
            detail=_detail(call, status, body),
        )
    return _bad_status(call, status, body)


def _content_text(call: Call, status: int, body: bytes, content: str) -> Failure:
    said = sample(content, limit=120)
    if "webkey" in content.lower():
        return Failure(
            ErrorKind.NOT_CONFIGURED,
            retryable=False,
            message=f"QCMobile refused the webKey: {said}",
            detail=_detail(call, status, body),
        )
    # A message from the upstream; retried only when the status says the fault is passing (5xx).
    return Failure(
        ErrorKind.UPSTREAM_ERROR,
        retryable=status >= 500,
        message=f"QCMobile said: {said}",
        detail=_detail(call, status, body),
    )


def _bad_status(call: Call, status: int, body: bytes) -> Failure:
    if status >= 500:
        return Failure(
            ErrorKind.UPSTREAM_ERROR,
            retryable=True,
            message=f"QCMobile failed (HTTP {status})",
            detail=_detail(call, status, body),
        )
    if status == 414:
        return Failure(
            ErrorKind.INTERNAL,
            retryable=False,
            message="QCMobile refused our URL as too long (HTTP 414)",
            detail=_detail(call, status, body),
        )
    return Failure(
        ErrorKind.UPSTREAM_ERROR,
        retryable=False,
        message=f"QCMobile refused the request (HTTP {status})",
        detail=_detail(call, status, body),
    )


def _wrong_shape(call: Call, status: int, body: bytes, error: _ShapeError) -> Failure:
    return Failure(
        ErrorKind.INVALID_RESPONSE,
        retryable=False,
        message=f"QCMobile {call.value} answer has an unexpected shape",
        detail=_detail(call, status, body, str(error)),
    )


# --- the two answers ------------------------------------------------------------------------------


def parse_carrier(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    dot: str,
    now: datetime,
    *,
    retry_after_max_s: float = 3600.0,
) -> CarrierFacts | Failure:
    """Return the carrier facts of a `/carriers/{dot}` answer, or the failure it stands for.

    `content: null` (or `[]`) is `not_found`; `carrier.dotNumber` other than `dot` is
    `invalid_response`; `ein` is never read.
    """
    envelope = classify(Call.CARRIER, status, headers, body, dot, now, retry_after_max_s=retry_after_max_s)
    if isinstance(envelope, Failure):
        return envelope
    try:
        return _carrier(
            _object(_object(envelope["content"], "content").get("carrier"), "content.carrier"), dot
        )
    except _ShapeError as error:
        return _wrong_shape(Call.CARRIER, status, body, error)


def _carrier(raw: dict[str, Any], dot: str) -> CarrierFacts:
    served_dot = _int(raw.get("dotNumber"), "carrier.dotNumber")
    if served_dot is not None and served_dot != int(dot):
        raise _ShapeError(f"carrier.dotNumber {served_dot} is not the requested {dot}")
    operation = raw.get("carrierOperation") or {}
    census = raw.get("censusTypeId") or {}
    operation = _object(operation, "carrier.carrierOperation")
    census = _object(census, "carrier.censusTypeId")
    unknown = frozenset({"U"})
    return CarrierFacts(
        dot_number=int(dot),
        legal_name=_text(raw.get("legalName"), "legalName"),
        dba_name=_text(raw.get("dbaName"), "dbaName"),
        status_code=_text(raw.get("statusCode"), "statusCode"),
        allowed_to_operate=_yes_no(raw.get("allowedToOperate"), "allowedToOperate"),
        out_of_service_date=_date(raw.get("oosDate"), "oosDate"),
        mcs150_outdated=_yes_no(raw.get("mcs150Outdated"), "mcs150Outdated"),
        is_passenger_carrier=_yes_no(raw.get("isPassengerCarrier"), "isPassengerCarrier"),
        carrier_operation_code=_text(operation.get("carrierOperationCode"), "carrierOperationCode"),
        carrier_operation_desc=_text(operation.get("carrierOperationDesc"), "carrierOperationDesc"),
        census_type=_text(census.get("censusType"), "censusType"),
        census_type_desc=_text(census.get("censusTypeDesc"), "censusTypeDesc"),
        total_power_units=_int(raw.get("totalPowerUnits"), "totalPowerUnits"),
        total_drivers=_int(raw.get("totalDrivers"), "totalDrivers"),
        driver_inspections=_int(raw.get("driverInsp"), "driverInsp"),
        driver_oos_inspections=_int(raw.get("driverOosInsp"), "driverOosInsp"),
        driver_oos_rate=_percent(raw.get("driverOosRate"), "driverOosRate"),
        driver_oos_rate_national_average=_percent(
            raw.get("driverOosRateNationalAverage"), "driverOosRateNationalAverage"
        ),
        vehicle_inspections=_int(raw.get("vehicleInsp"), "vehicleInsp"),
        vehicle_oos_inspections=_int(raw.get("vehicleOosInsp"), "vehicleOosInsp"),
        vehicle_oos_rate=_percent(raw.get("vehicleOosRate"), "vehicleOosRate"),
        vehicle_oos_rate_national_average=_percent(
            raw.get("vehicleOosRateNationalAverage"), "vehicleOosRateNationalAverage"
        ),
        hazmat_inspections=_int(raw.get("hazmatInsp"), "hazmatInsp"),
        hazmat_oos_inspections=_int(raw.get("hazmatOosInsp"), "hazmatOosInsp"),
        hazmat_oos_rate=_percent(raw.get("hazmatOosRate"), "hazmatOosRate"),
        hazmat_oos_rate_national_average=_percent(
            raw.get("hazmatOosRateNationalAverage"), "hazmatOosRateNationalAverage"
        ),
        oos_rate_national_average_year=_text(
            raw.get("oosRateNationalAverageYear"), "oosRateNationalAverageYear"
        ),
        crash_total=_int(raw.get("crashTotal"), "crashTotal"),
        fatal_crashes=_int(raw.get("fatalCrash"), "fatalCrash"),
        injury_crashes=_int(raw.get("injCrash"), "injCrash"),
        towaway_crashes=_int(raw.get("towawayCrash"), "towawayCrash"),
        safety_rating=_code(raw.get("safetyRating"), "safetyRating", SafetyRating),
        safety_rating_date=_date(raw.get("safetyRatingDate"), "safetyRatingDate"),
        safety_review_date=_date(raw.get("safetyReviewDate"), "safetyReviewDate"),
        safety_review_type=_text(raw.get("safetyReviewType"), "safetyReviewType"),
        review_date=_date(raw.get("reviewDate"), "reviewDate"),
        review_type=_text(raw.get("reviewType"), "reviewType"),
        common_authority=_code(raw.get("commonAuthorityStatus"), "commonAuthorityStatus", AuthorityStatus),
        contract_authority=_code(
            raw.get("contractAuthorityStatus"), "contractAuthorityStatus", AuthorityStatus
        ),
        broker_authority=_code(raw.get("brokerAuthorityStatus"), "brokerAuthorityStatus", AuthorityStatus),
        bipd_insurance_required=_yes_no(
            raw.get("bipdInsuranceRequired"), "bipdInsuranceRequired", unknown=unknown
        ),
        bipd_required_amount=_int(raw.get("bipdRequiredAmount"), "bipdRequiredAmount"),
        bipd_insurance_on_file=_int(raw.get("bipdInsuranceOnFile"), "bipdInsuranceOnFile"),
        cargo_insurance_required=_yes_no(
            raw.get("cargoInsuranceRequired"), "cargoInsuranceRequired", unknown=unknown
        ),
        cargo_insurance_on_file=_int(raw.get("cargoInsuranceOnFile"), "cargoInsuranceOnFile"),
        bond_insurance_required=_yes_no(
            raw.get("bondInsuranceRequired"), "bondInsuranceRequired", unknown=unknown
        ),
        bond_insurance_on_file=_int(raw.get("bondInsuranceOnFile"), "bondInsuranceOnFile"),
        street=_text(raw.get("phyStreet"), "phyStreet"),
        city=_text(raw.get("phyCity"), "phyCity"),
        state=_text(raw.get("phyState"), "phyState"),
        zipcode=_text(raw.get("phyZipcode"), "phyZipcode"),
        country=_text(raw.get("phyCountry"), "phyCountry"),
    )


def _percent(value: object, name: str) -> Decimal | None:
    number = _decimal(value, name)
    if number is not None and number > 100:
        raise _ShapeError(f"{name} is above 100: {_show(value)}")
    return number


def parse_basics(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    dot: str,
    now: datetime,
    *,
    retry_after_max_s: float = 3600.0,
) -> BasicsAnswer | Failure:
    """Return the BASIC scores of a `/carriers/{dot}/basics` answer (possibly none), or the failure.

    An entry whose `id.dotNumber` is another carrier, whose `basicsId` is missing or repeated, or
    whose numbers do not parse is `invalid_response`; an unknown `basicsId` is kept with its labels.
    """
    envelope = classify(Call.BASICS, status, headers, body, dot, now, retry_after_max_s=retry_after_max_s)
    if isinstance(envelope, Failure):
        return envelope
    try:
        content = envelope["content"]
        if not isinstance(content, list):
            raise _ShapeError("content is not an array")
        notes: list[str] = []
        basics = tuple(_basic(entry, index, dot, notes) for index, entry in enumerate(content))
    except _ShapeError as error:
        return _wrong_shape(Call.BASICS, status, body, error)
    ids = [b.basics_id for b in basics]
    if len(set(ids)) != len(ids):
        return _wrong_shape(Call.BASICS, status, body, _ShapeError(f"basicsId repeated in {sorted(ids)}"))
    return BasicsAnswer(
        basics=tuple(sorted(basics, key=lambda b: b.basics_id)),
        retrieval_date=parse_timestamp(envelope.get("retrievalDate")),
        notes=tuple(notes),
    )


def _basic(entry: object, index: int, dot: str, notes: list[str]) -> BasicScore:
    raw = _object(_object(entry, f"content[{index}]").get("basic"), f"content[{index}].basic")
    kind = _object(raw.get("basicsType") or {}, f"content[{index}].basic.basicsType")
    ident = _object(raw.get("id") or {}, f"content[{index}].basic.id")
    basics_id = _int(kind.get("basicsId"), "basicsType.basicsId")
    ident_id = _int(ident.get("basicsId"), "id.basicsId")
    if basics_id is None:
        basics_id = ident_id
    if basics_id is None:
        raise _ShapeError(f"content[{index}] has no basicsId")
    if ident_id is not None and ident_id != basics_id:
        raise _ShapeError(f"content[{index}] names basicsId {basics_id} and {ident_id}")
    served_dot = _int(ident.get("dotNumber"), "id.dotNumber")
    if served_dot is not None and served_dot != int(dot):
        raise _ShapeError(f"basic {basics_id} is for dotNumber {served_dot}, not the requested {dot}")
    raw_percentile = raw.get("basicsPercentile")
    percentile, percentile_status = parse_percentile(raw_percentile)
    if percentile_status is PercentileStatus.UNRECOGNIZED:
        notes.append(f"basic {basics_id}: basicsPercentile unrecognized: {_show(raw_percentile)}")
    flags = {}
    for field_name, key in _FLAG_KEYS:
        flags[field_name] = parse_flag(raw.get(key))
        if flags[field_name].reason is FlagReason.UNRECOGNIZED:
            notes.append(f"basic {basics_id}: {key} unrecognized: {_show(raw.get(key))}")
    run_date_raw = raw.get("basicsRunDate")
    run_date = parse_timestamp(run_date_raw)
    if run_date is None and run_date_raw not in (None, ""):
        raise _ShapeError(f"basic {basics_id}: basicsRunDate is not a timestamp: {_show(run_date_raw)}")
    return BasicScore(
        basics_id=basics_id,
        code=_text(kind.get("basicsCode"), "basicsCode"),
        name=_text(kind.get("basicsShortDesc"), "basicsShortDesc"),
        percentile=percentile,
        percentile_status=percentile_status,
        measure=_decimal(raw.get("measureValue"), f"basic {basics_id}: measureValue"),
        threshold=_int(raw.get("basicsViolationThreshold"), f"basic {basics_id}: basicsViolationThreshold"),
        intervention_alert=flags["intervention_alert"],
        on_road_alert=flags["on_road_alert"],
        serious_violation=flags["serious_violation"],
        inspections_with_violation=_int(
            raw.get("totalInspectionWithViolation"), f"basic {basics_id}: totalInspectionWithViolation"
        ),
        violations=_int(raw.get("totalViolation"), f"basic {basics_id}: totalViolation"),
        run_date=run_date,
    )


_FLAG_KEYS: Final = (
    ("intervention_alert", "exceededFMCSAInterventionThreshold"),
    ("on_road_alert", "onRoadPerformanceThresholdViolationIndicator"),
    ("serious_violation", "seriousViolationFromInvestigationPast12MonthIndicator"),
)


def as_of_month(moment: datetime) -> datetime:
    """Return 00:00 UTC on the first day of `moment`'s month (UTC): the csa `upstream_as_of`."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def assemble(dot: str, carrier: CarrierFacts, answer: BasicsAnswer, now: datetime) -> CsaFetch:
    """Combine the two answers of one sync into its fetch.

    `retrieved_at` is our clock at the end of the sync; `upstream_as_of` is the month of the
    upstream's `retrievalDate` (see the module docstring).
    """
    observed = answer.retrieval_date or now
    return CsaFetch(
        dot=dot,
        retrieved_at=now,
        upstream_as_of=as_of_month(observed),
        carrier=carrier,
        basics=answer.basics,
        notes=answer.notes,
    )


# --- hashing and the summary ----------------------------------------------------------------------


def stable_hash(content: Mapping[str, JsonValue]) -> str:
    """Hash canonical JSON (SHA-256, sorted keys, no spaces): equal content, equal hash, any host."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _flag_json(flag: Flag) -> JsonValue:
    return {"value": flag.value, "reason": flag.reason.value if flag.reason else None}


_RATING_WORDS: Final = {
    SafetyRating.SATISFACTORY: "satisfactory",
    SafetyRating.CONDITIONAL: "conditional",
    SafetyRating.UNSATISFACTORY: "unsatisfactory",
}
_AUTHORITY_WORDS: Final = {
    AuthorityStatus.ACTIVE: "active",
    AuthorityStatus.INACTIVE: "inactive",
    AuthorityStatus.NONE: "none",
}


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _basic_summary(basic: BasicScore) -> dict[str, JsonValue]:
    return {
        "id": basic.basics_id,
        "code": basic.code,
        "name": basic.name,
        "percentile": _decimal_text(basic.percentile),
        "percentile_status": basic.percentile_status.value,
        "measure": _decimal_text(basic.measure),
        "threshold": basic.threshold,
        "alert": basic.intervention_alert.value,
        "alert_reason": basic.intervention_alert.reason.value if basic.intervention_alert.reason else None,
        "on_road_alert": basic.on_road_alert.value,
        "serious_violation": basic.serious_violation.value,
        "inspections_with_violation": basic.inspections_with_violation,
        "violations": basic.violations,
    }


def _inspection_group(
    inspections: int | None, oos: int | None, rate: Decimal | None, average: Decimal | None
) -> JsonValue:
    return {
        "inspections": inspections,
        "out_of_service": oos,
        "oos_rate": _decimal_text(rate),
        "national_average": _decimal_text(average),
    }


def summarize(fetch: CsaFetch) -> dict[str, JsonValue]:
    """Return the compact view of one fetch that the status page shows.

    Per BASIC its percentile (with status), measure, threshold and alert flags; the carrier's
    rating, authority, OOS and crash figures. Decimals are strings, dates ISO; a hidden value is
    None beside its reason, never 0.
    """
    carrier = fetch.carrier
    basics: list[JsonValue] = [_basic_summary(b) for b in fetch.basics]
    alerts: list[JsonValue] = [
        b.basics_id for b in fetch.basics if b.intervention_alert.value or b.on_road_alert.value
    ]
    return {
        "basics": basics,
        "alerts": alerts,
        "percentiles_public": any(b.percentile_status is PercentileStatus.PUBLIC for b in fetch.basics),
        "legal_name": carrier.legal_name,
        "allowed_to_operate": carrier.allowed_to_operate,
        "out_of_service_date": _iso(carrier.out_of_service_date),
        "safety_rating": _RATING_WORDS[carrier.safety_rating] if carrier.safety_rating else "not_rated",
        "safety_rating_date": _iso(carrier.safety_rating_date),
        "authority": {
            "common": _AUTHORITY_WORDS[carrier.common_authority] if carrier.common_authority else None,
            "contract": _AUTHORITY_WORDS[carrier.contract_authority] if carrier.contract_authority else None,
            "broker": _AUTHORITY_WORDS[carrier.broker_authority] if carrier.broker_authority else None,
        },
        "inspections": {
            "driver": _inspection_group(
                carrier.driver_inspections,
                carrier.driver_oos_inspections,
                carrier.driver_oos_rate,
                carrier.driver_oos_rate_national_average,
            ),
            "vehicle": _inspection_group(
                carrier.vehicle_inspections,
                carrier.vehicle_oos_inspections,
                carrier.vehicle_oos_rate,
                carrier.vehicle_oos_rate_national_average,
            ),
            "hazmat": _inspection_group(
                carrier.hazmat_inspections,
                carrier.hazmat_oos_inspections,
                carrier.hazmat_oos_rate,
                carrier.hazmat_oos_rate_national_average,
            ),
        },
        "crashes": {
            "total": carrier.crash_total,
            "fatal": carrier.fatal_crashes,
            "injury": carrier.injury_crashes,
            "towaway": carrier.towaway_crashes,
        },
    }


def fetch_hashes(fetch: CsaFetch) -> dict[str, str]:
    """Return the content hash per record key: `"carrier"` and each BASIC id as a string."""
    return {
        "carrier": fetch.carrier.content_hash(),
        **{str(b.basics_id): b.content_hash() for b in fetch.basics},
    }


def failure_for_exception(call: Call, error: BaseException) -> Failure:
    """Turn an unexpected exception while mapping an answer into `internal` (our bug, not retried)."""
    return Failure(
        ErrorKind.INTERNAL,
        retryable=False,
        message=f"csa source could not map the QCMobile {call.value} answer",
        detail=redact(f"{type(error).__name__}: {error}")[:500],
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
        "percentile": _decimal_text(basic.percentile),
        "status": basic.percentile_status.value,
        "measure": _decimal_text(basic.measure),
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
