"""Classifying a SaferWebAPI answer (fmcsa README 5.5) and normalizing its snapshot (README 5.2).

Bodies are parsed with `fmcsa_events.decimals.loads` (a JSON number with a fraction is a `Decimal`, never a
float); a percent with more digits than can be stored is a wrong shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fmcsa_events import decimals
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_inspections.domain.records import (
    CanadaInspections,
    Crashes,
    InspectionFigures,
    InspectionsFetch,
    Mileage,
    SafetyRating,
    Snapshot,
    UsInspections,
    as_of,
)
from fmcsa_source_kit.failures import Failure


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
    return InspectionsFetch(
        dot=dot, retrieved_at=retrieved_at, upstream_as_of=as_of(snapshot), snapshot=snapshot
    )


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
