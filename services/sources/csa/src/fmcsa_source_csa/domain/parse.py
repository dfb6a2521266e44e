"""QCMobile answers into domain values: classify an answer, normalize carrier facts and BASIC scores.

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

import html
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, TypeVar

from fmcsa_events import decimals
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import redact, sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_csa.domain.model import (
    AuthorityStatus,
    BasicsAnswer,
    BasicScore,
    Call,
    CarrierFacts,
    CsaFetch,
    Flag,
    FlagReason,
    PercentileStatus,
    SafetyRating,
)
from fmcsa_source_kit.failures import Failure

MAINTENANCE_TITLE: Final = b"FMCSA System Maintenance Page"
_Code = TypeVar("_Code", bound=StrEnum)


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
