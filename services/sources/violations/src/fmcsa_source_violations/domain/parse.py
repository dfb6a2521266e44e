"""Parsing of the violations dataset (docs/upstreams.md sections 2 and 4, dataset `8mt8-2mdr`): one
Socrata answer becomes a `Page` or one `Failure`, one row a normalized `Violation` with its key and
content hash. No I/O, no clock, no framework: every input (status, headers, body, the requested DOT,
the time) comes in as an argument.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

from fmcsa_events import decimals
from fmcsa_events.identifiers import Basic
from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_kit.failures import Failure
from fmcsa_source_violations.domain.model import Page, Violation

HASH_VERSION = "v1"
"""Prefix of every content hash; bump it when the hashed fields or their normalization change."""

# Characters that change nothing a person reads but would change a hash: soft hyphen (served in
# `basic_desc`), zero-width space and byte-order mark.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\ufeff"))

# `%b` depends on the locale; the dataset's months are English upper-case abbreviations.
_MONTHS = {
    "JAN": 1,
    "FEB": 2,
    "MAR": 3,
    "APR": 4,
    "MAY": 5,
    "JUN": 6,
    "JUL": 7,
    "AUG": 8,
    "SEP": 9,
    "OCT": 10,
    "NOV": 11,
    "DEC": 12,
}
_DD_MON_YY = re.compile(r"([0-9]{2})-([A-Za-z]{3})-([0-9]{2})")
# Socrata's floating-timestamp form, served if the column were ever typed as a date (types unverified).
_FLOATING = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T00:00:00(?:\.0{1,3})?)?")
_DIGITS = re.compile(r"[0-9]{1,10}")

# Labels reduced to lower-case letters and digits; the hazmat label is unverified, so several spellings.
_BASIC_BY_LABEL = {
    "unsafedriving": Basic.UNSAFE_DRIVING,
    "hoursofservicecompliance": Basic.HOS_COMPLIANCE,
    "hoscompliance": Basic.HOS_COMPLIANCE,
    "driverfitness": Basic.DRIVER_FITNESS,
    "controlledsubstancesalcohol": Basic.DRUGS_ALCOHOL,
    "drugsalcohol": Basic.DRUGS_ALCOHOL,
    "vehiclemaintenance": Basic.VEHICLE_MAINTENANCE,
    "vehiclemaint": Basic.VEHICLE_MAINTENANCE,
    "hazardousmaterialscompliance": Basic.HAZMAT_COMPLIANCE,
    "hazardousmaterials": Basic.HAZMAT_COMPLIANCE,
    "hmcompliance": Basic.HAZMAT_COMPLIANCE,
    "hazmatcompliance": Basic.HAZMAT_COMPLIANCE,
    "crashindicator": Basic.CRASH_INDICATOR,
}


class _RowError(ValueError):
    """A row value that is not what the dataset serves; becomes invalid_response."""


# ---------------------------------------------------------------------------------------------------
# normalization


def normalize_label(text: str) -> str:
    """Unescape HTML entities, drop soft hyphens and zero-width characters, collapse whitespace."""
    return " ".join(html.unescape(text).translate(_INVISIBLE).split())


def basic_for(label: str | None) -> Basic | None:
    """The BASIC for a normalized `basic_desc`, or None for an unknown label (kept, not refused)."""
    if label is None:
        return None
    return _BASIC_BY_LABEL.get(re.sub(r"[^a-z0-9]", "", label.casefold()))


def parse_dd_mon_yy(value: str) -> date:
    """`07-OCT-24` -> 2024-10-07 (month in any case, years 20xx); also Socrata's `2024-10-07T00:00:00.000`.

    Raises ValueError for anything else, including impossible days.
    """
    text = value.strip()
    if match := _DD_MON_YY.fullmatch(text):
        month = _MONTHS.get(match.group(2).upper())
        if month is None:
            raise ValueError(f"unknown month in {sample(text, limit=40)!r}")
        return date(2000 + int(match.group(3)), month, int(match.group(1)))
    if match := _FLOATING.fullmatch(text):
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    raise ValueError(f"not a DD-MON-YY date: {sample(text, limit=40)!r}")


def parse_flag(value: object) -> bool:
    """`"true"`/`"false"` in any case, or a JSON boolean; anything else raises ValueError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    raise ValueError(f"not a true/false flag: {sample(repr(value), limit=40)}")


def parse_integer(value: object) -> int:
    """A non-negative integer from a digit string or a JSON integer; decimals, signs and booleans raise."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative integer {value}")
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError(f"not an integer: {sample(repr(value), limit=40)}")


def content_hash(
    *,
    dot_number: int,
    unique_id: str,
    insp_date: date,
    viol_code: str,
    viol_unit: str,
    basic_desc: str | None,
    oos: bool,
    oos_weight: int,
    severity_weight: int,
    section_desc: str | None,
    group_desc: str | None,
) -> str:
    """Stable hash of a row's normalized content, without `time_weight` and `total_severity_wght`."""
    payload = [
        HASH_VERSION,
        dot_number,
        unique_id,
        insp_date.isoformat(),
        viol_code,
        viol_unit,
        basic_desc,
        oos,
        oos_weight,
        severity_weight,
        section_desc,
        group_desc,
    ]
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _text(row: Mapping[str, object], key: str, *, required: bool) -> str | None:
    """A label (HTML entities unescaped, see `normalize_label`) or, when required, an identity value
    (only invisible characters and surrounding whitespace removed).
    """
    value = row.get(key)  # a missing key means null
    if value is None:
        if required:
            raise _RowError(f"{key} is missing")
        return None
    if not isinstance(value, str):
        raise _RowError(f"{key} is not a string")
    text = value.translate(_INVISIBLE).strip() if required else normalize_label(value)
    if not text:
        if required:
            raise _RowError(f"{key} is empty")
        return None
    return text


def _required(row: Mapping[str, object], key: str) -> object:
    value = row.get(key)
    if value is None:
        raise _RowError(f"{key} is missing")
    return value


def parse_row(row: Mapping[str, object], dot: str | frozenset[str]) -> Violation:
    """Normalize one row object (ordinal 0). Raises ValueError naming the field when a value is not
    what the dataset serves, or when the row belongs to another DOT (`dot`: the one asked for, or the
    DOTs of a batched delta query).

    Required: unique_id, insp_date, dot_number, viol_code, viol_unit, oos_indicator, oos_weight,
    severity_weight, time_weight. Optional (null or missing): basic_desc, section_desc, group_desc,
    total_severity_wght. Unknown keys are ignored.
    """
    try:
        dot_number = parse_integer(_required(row, "dot_number"))
        if dot_number != int(dot) if isinstance(dot, str) else str(dot_number) not in dot:
            raise _RowError(f"row for DOT {dot_number}, requested {_shown(dot)}")
        unique_id = _text(row, "unique_id", required=True) or ""
        viol_code = _text(row, "viol_code", required=True) or ""
        viol_unit = (_text(row, "viol_unit", required=True) or "").upper()
        raw_date = _required(row, "insp_date")
        if not isinstance(raw_date, str):
            raise _RowError("insp_date is not a string")
        insp_date = parse_dd_mon_yy(raw_date)
        basic_desc = _text(row, "basic_desc", required=False)
        oos = parse_flag(_required(row, "oos_indicator"))
        oos_weight = parse_integer(_required(row, "oos_weight"))
        severity_weight = parse_integer(_required(row, "severity_weight"))
        time_weight = parse_integer(_required(row, "time_weight"))
        raw_total = row.get("total_severity_wght")
        total = None if raw_total is None else parse_integer(raw_total)
        section_desc = _text(row, "section_desc", required=False)
        group_desc = _text(row, "group_desc", required=False)
    except _RowError:
        raise
    except ValueError as error:
        raise _RowError(str(error)) from None
    digest = content_hash(
        dot_number=dot_number,
        unique_id=unique_id,
        insp_date=insp_date,
        viol_code=viol_code,
        viol_unit=viol_unit,
        basic_desc=basic_desc,
        oos=oos,
        oos_weight=oos_weight,
        severity_weight=severity_weight,
        section_desc=section_desc,
        group_desc=group_desc,
    )
    return Violation(
        dot_number=dot_number,
        unique_id=unique_id,
        viol_code=viol_code,
        viol_unit=viol_unit,
        ordinal=0,
        insp_date=insp_date,
        basic=basic_for(basic_desc),
        basic_desc=basic_desc,
        oos=oos,
        oos_weight=oos_weight,
        severity_weight=severity_weight,
        time_weight=time_weight,
        total_severity_wght=total,
        section_desc=section_desc,
        group_desc=group_desc,
        content_hash=digest,
    )


def _shown(dot: str | frozenset[str]) -> str:
    return dot if isinstance(dot, str) else f"one of {len(dot)} DOTs"


def parse_updated_at(value: object) -> datetime:
    """Socrata's `:updated_at` system field (`2026-11-27T00:00:00.000Z`) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(":updated_at is not a string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def assign_ordinals(rows: Sequence[Violation]) -> tuple[Violation, ...]:
    """Number rows sharing (dot, unique_id, viol_code, viol_unit) from 0 in content-hash order.

    The result keeps the input order; the ordinals do not depend on it, so identical duplicates get 0
    and 1 whatever order they arrive in, and every key of the result is unique.
    """
    groups: defaultdict[tuple[int, str, str, str], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[(row.dot_number, row.unique_id, row.viol_code, row.viol_unit)].append(index)
    numbered = list(rows)
    for indexes in groups.values():
        for ordinal, index in enumerate(sorted(indexes, key=lambda i: rows[i].content_hash)):
            numbered[index] = replace(rows[index], ordinal=ordinal)
    return tuple(numbered)


# ---------------------------------------------------------------------------------------------------
# classification of one answer (README 4.7)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


def parse_http_date(value: str | None) -> datetime | None:
    """An aware UTC datetime from an HTTP date header, or None when absent or unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _error_code(body: bytes) -> str | None:
    """Socrata's `code` (parse errors) or `errorCode` (semantic errors) from a JSON error body."""
    try:
        parsed = decimals.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    code = parsed.get("code") or parsed.get("errorCode")
    return sample(code, limit=80) if isinstance(code, str) else None


def _detail(
    status: int, headers: Mapping[str, str], body: bytes, *, code: str | None = None, note: str = ""
) -> str:
    parts = [f"status={status}"]
    if code:
        parts.append(f"code={code}")
    if request_id := _header(headers, "X-Socrata-RequestId"):
        parts.append(f"request_id={sample(request_id, limit=64)}")
    if note:
        parts.append(note)
    parts.append(f"body={sample(body)}")
    return " ".join(parts)


def parse_page(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    dot: str | frozenset[str],
    now: datetime,
    *,
    token_sent: bool,
    retry_after_max_s: float,
) -> Page | Failure:
    """Classify one Socrata answer per README 4.7: a parsed page, or one Failure with a scrubbed detail.

    `token_sent` decides 401/403: with a token it is `not_configured` (fix or remove the token);
    without one it is an edge refusal (`upstream_error`, not retryable). A 202 is a retryable
    `upstream_error` the client waits on briefly; 429 and 5xx carry the clamped Retry-After.
    """
    retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now, ceiling_s=retry_after_max_s)
    if status == 202:
        return Failure(
            ErrorKind.UPSTREAM_ERROR,
            retryable=True,
            message="Socrata is still preparing the answer (202)",
            detail=_detail(status, headers, body),
            retry_after_s=retry_after,
        )
    if 200 <= status < 300:
        return _parse_rows(status, headers, body, dot)
    code = _error_code(body)
    shown = f" {code}" if code else ""
    detail = _detail(status, headers, body, code=code)
    if status == 429:
        return Failure(
            ErrorKind.RATE_LIMITED,
            retryable=True,
            message="Socrata rate limit reached (429)",
            detail=detail,
            retry_after_s=retry_after,
        )
    if status >= 500:
        return Failure(
            ErrorKind.UPSTREAM_ERROR,
            retryable=True,
            message=f"Socrata server error ({status})",
            detail=detail,
            retry_after_s=retry_after,
        )
    if status in (401, 403) and token_sent:
        return Failure(
            ErrorKind.NOT_CONFIGURED,
            retryable=False,
            message=f"Socrata refused the app token ({status}{shown}): fix or remove it",
            detail=detail,
        )
    if status == 414:
        return Failure(
            ErrorKind.INTERNAL, retryable=False, message="our Socrata URL is too long (414)", detail=detail
        )
    if status == 400:
        message = f"Socrata refused the query (400{shown})"
    elif status == 404:
        message = f"Socrata dataset not found (404{shown})"
    else:
        message = f"Socrata answered {status}{shown}"
    return Failure(ErrorKind.UPSTREAM_ERROR, retryable=False, message=message, detail=detail)


def _parse_rows(
    status: int, headers: Mapping[str, str], body: bytes, dot: str | frozenset[str]
) -> Page | Failure:
    try:
        parsed = decimals.loads(body)
    except (ValueError, RecursionError):
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=True,
            message="Socrata answered with a body that is not JSON or is cut short",
            detail=_detail(status, headers, body),
        )
    if not isinstance(parsed, list):
        return _shape_failure(status, headers, body, "the answer is not a JSON array")
    rows: list[Violation] = []
    high_water: datetime | None = None
    for index, item in enumerate(parsed):
        if not isinstance(item, dict):
            return _shape_failure(status, headers, body, f"row {index} is not an object")
        try:
            rows.append(parse_row(item, dot))
            if ":updated_at" in item:
                updated = parse_updated_at(item[":updated_at"])
                high_water = updated if high_water is None else max(high_water, updated)
        except ValueError as error:
            return _shape_failure(status, headers, body, f"row {index}: {error}")
    version = _header(headers, "Last-Modified") or _header(headers, "X-SODA2-Truth-Last-Modified")
    return Page(
        rows=tuple(rows),
        version=version.strip() if version else None,
        last_modified=parse_http_date(version),
        request_id=_header(headers, "X-Socrata-RequestId"),
        high_water=high_water,
    )


def _shape_failure(status: int, headers: Mapping[str, str], body: bytes, problem: str) -> Failure:
    return Failure(
        ErrorKind.INVALID_RESPONSE,
        retryable=False,
        message=f"Socrata rows of the wrong shape: {sample(problem, limit=160)}",
        detail=_detail(status, headers, body, note=f"problem={sample(problem, limit=160)}"),
    )
