"""Pure rules of the violations source: classify Socrata answers, normalize rows, key, hash, page, summarize.

Follows docs/upstreams.md sections 2 and 4 (dataset `8mt8-2mdr`). No I/O, no clock, no
framework: every input (status, headers, body, the requested DOT, the time) comes in as an argument.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from enum import Enum, StrEnum
from uuid import UUID

from pydantic import JsonValue

from fmcsa_events import decimals
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind, ErrorKind
from fmcsa_runtime.redaction import sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_kit.failures import Failure

HASH_VERSION = "v1"
"""Prefix of every content hash; bump it when the hashed fields or their normalization change."""

INLINE_BACKOFF_BASE_S = 1.0
"""First step of the in-process exponential backoff (full jitter) when no Retry-After came."""

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


class Basic(StrEnum):
    """The BASIC a violation counts toward, keyed from its normalized `basic_desc` label."""

    UNSAFE_DRIVING = "unsafe_driving"
    HOS_COMPLIANCE = "hos_compliance"
    DRIVER_FITNESS = "driver_fitness"
    DRUGS_ALCOHOL = "drugs_alcohol"
    VEHICLE_MAINTENANCE = "vehicle_maintenance"
    HAZMAT_COMPLIANCE = "hazmat_compliance"
    CRASH_INDICATOR = "crash_indicator"


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


class ViolationUnit(StrEnum):
    """Who or what was cited: `viol_unit` values `1`, `2`, `D`, `C`."""

    MAIN_UNIT = "1"
    SECONDARY_UNIT = "2"
    DRIVER = "D"
    CO_DRIVER = "C"


ViolationKey = tuple[int, str, str, str, int]
"""(dot_number, unique_id, viol_code, viol_unit, ordinal): unique per carrier within one read."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One normalized violation row. `content_hash` covers every field except `time_weight` and
    `total_severity_wght` (they move monthly without anything happening on the road) and `ordinal`.
    """

    dot_number: int
    unique_id: str
    viol_code: str
    viol_unit: str
    ordinal: int
    insp_date: date
    basic: Basic | None
    basic_desc: str | None
    oos: bool
    oos_weight: int
    severity_weight: int
    time_weight: int
    total_severity_wght: int | None
    section_desc: str | None
    group_desc: str | None
    content_hash: str

    @property
    def key(self) -> ViolationKey:
        return (self.dot_number, self.unique_id, self.viol_code, self.viol_unit, self.ordinal)

    @property
    def unit(self) -> ViolationUnit | None:
        """The cited unit, or None for a code this client does not know (kept, not refused)."""
        try:
            return ViolationUnit(self.viol_unit)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ViolationsFetch:
    """The result of one complete read of a carrier's rows: every page, with stable ordinals.

    `upstream_as_of` is the dataset's Last-Modified (or X-SODA2-Truth-Last-Modified) when the read
    began; None when Socrata sent neither. An empty `records` is a success (clean carrier or unknown DOT).
    """

    dot: str
    retrieved_at: datetime
    upstream_as_of: datetime | None
    records: tuple[Violation, ...]
    pages: int = 1


@dataclass(frozen=True, slots=True)
class Page:
    """One parsed page. `rows` carry ordinal 0 until `assemble` numbers them; `version` is the raw
    Last-Modified marker compared between pages of one read.
    """

    rows: tuple[Violation, ...]
    version: str | None
    last_modified: datetime | None
    request_id: str | None


class Step(Enum):
    """What a read does after a page."""

    NEXT_PAGE = "next_page"
    COMPLETE = "complete"
    RESTART = "restart"


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


def parse_row(row: Mapping[str, object], dot: str) -> Violation:
    """Normalize one row object (ordinal 0). Raises ValueError naming the field when a value is not
    what the dataset serves, or when the row belongs to another DOT.

    Required: unique_id, insp_date, dot_number, viol_code, viol_unit, oos_indicator, oos_weight,
    severity_weight, time_weight. Optional (null or missing): basic_desc, section_desc, group_desc,
    total_severity_wght. Unknown keys are ignored.
    """
    try:
        dot_number = parse_integer(_required(row, "dot_number"))
        if dot_number != int(dot):
            raise _RowError(f"row for DOT {dot_number}, requested {dot}")
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
    dot: str,
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


def _parse_rows(status: int, headers: Mapping[str, str], body: bytes, dot: str) -> Page | Failure:
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
    for index, item in enumerate(parsed):
        if not isinstance(item, dict):
            return _shape_failure(status, headers, body, f"row {index} is not an object")
        try:
            rows.append(parse_row(item, dot))
        except ValueError as error:
            return _shape_failure(status, headers, body, f"row {index}: {error}")
    version = _header(headers, "Last-Modified") or _header(headers, "X-SODA2-Truth-Last-Modified")
    return Page(
        rows=tuple(rows),
        version=version.strip() if version else None,
        last_modified=parse_http_date(version),
        request_id=_header(headers, "X-Socrata-RequestId"),
    )


def _shape_failure(status: int, headers: Mapping[str, str], body: bytes, problem: str) -> Failure:
    return Failure(
        ErrorKind.INVALID_RESPONSE,
        retryable=False,
        message=f"Socrata rows of the wrong shape: {sample(problem, limit=160)}",
        detail=_detail(status, headers, body, note=f"problem={sample(problem, limit=160)}"),
    )


# ---------------------------------------------------------------------------------------------------
# paging (README 4.2)


def next_step(
    page: Page,
    *,
    index: int,
    first_version: str | None,
    page_size: int,
    max_pages: int,
    restarted: bool,
) -> Step | Failure:
    """After page `index` (0-based) of a read: read on, stop, restart, or fail.

    A short page (fewer rows than `page_size`, `[]` included) completes the read. A Last-Modified that
    differs from the first page's means the monthly refresh happened mid-read: restart once, then fail
    retryable. More rows than asked, or a full page at the `max_pages` guard, is `invalid_response`.
    """
    if index > 0 and page.version is not None and first_version is not None and page.version != first_version:
        if restarted:
            return Failure(
                ErrorKind.UPSTREAM_ERROR,
                retryable=True,
                message="the violations dataset was refreshed during the read, twice",
                detail=f"page={index} first_last_modified={first_version} now={page.version}",
            )
        return Step.RESTART
    if len(page.rows) > page_size:
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=False,
            message=f"Socrata sent {len(page.rows)} rows for a $limit of {page_size}",
            detail=f"page={index} request_id={page.request_id}",
        )
    if len(page.rows) < page_size:
        return Step.COMPLETE
    if index + 1 >= max_pages:
        return Failure(
            ErrorKind.INVALID_RESPONSE,
            retryable=False,
            message=f"more than {max_pages} pages of violations: paging guard tripped",
            detail=f"pages={index + 1} page_size={page_size} request_id={page.request_id}",
        )
    return Step.NEXT_PAGE


def assemble(dot: str, pages: Sequence[Page], *, retrieved_at: datetime) -> ViolationsFetch:
    """The fetch of one complete read: all rows with stable ordinals, as-of from the first page."""
    rows = [row for page in pages for row in page.rows]
    return ViolationsFetch(
        dot=dot,
        retrieved_at=retrieved_at,
        upstream_as_of=pages[0].last_modified if pages else None,
        records=assign_ordinals(rows),
        pages=len(pages),
    )


# ---------------------------------------------------------------------------------------------------
# retrying (README 2.3)


def inline_wait(
    failure: Failure,
    *,
    retries_done: int,
    inline_retries: int,
    inline_wait_max_s: float,
    draw: float,
) -> float | None:
    """Seconds to wait before retrying in process, or None to hand the failure back to the bus.

    Only retryable failures, at most `inline_retries` times, and only when the wait (Retry-After, else
    exponential backoff with full jitter: `draw` in [0, 1) times 1, 2, 4... s) is at most
    `inline_wait_max_s`. Timeouts go back at once: the call already spent its read timeout.
    """
    if not failure.retryable or failure.kind is ErrorKind.TIMEOUT or retries_done >= inline_retries:
        return None
    if failure.retry_after_s is not None:
        wait = failure.retry_after_s
    else:
        wait = draw * min(inline_wait_max_s, INLINE_BACKOFF_BASE_S * 2**retries_done)
    return wait if wait <= inline_wait_max_s else None


def for_the_bus(failure: Failure, *, inline_wait_max_s: float) -> Failure:
    """A retryable failure always carries `retry_after_s` when it leaves the client: the upstream's
    Retry-After, else twice the longest inline wait (at least 2 s).
    """
    if not failure.retryable or failure.retry_after_s is not None:
        return failure
    return replace(failure, retry_after_s=max(2.0, 2 * inline_wait_max_s))


# ---------------------------------------------------------------------------------------------------
# summary


def summarize(fetch: ViolationsFetch) -> dict[str, JsonValue]:
    """What the status view shows: totals, out-of-service count, distinct inspections, counts per BASIC
    (`unknown` for a label this client does not know), latest inspection date (ISO) and the as-of.
    """
    per_basic = Counter(v.basic.value if v.basic else "unknown" for v in fetch.records)
    oos_per_basic = Counter(v.basic.value if v.basic else "unknown" for v in fetch.records if v.oos)
    latest = max((v.insp_date for v in fetch.records), default=None)
    return {
        "total": len(fetch.records),
        "oos": sum(1 for v in fetch.records if v.oos),
        "inspections": len({v.unique_id for v in fetch.records}),
        "per_basic": {key: per_basic[key] for key in sorted(per_basic)},
        "oos_per_basic": {key: oos_per_basic[key] for key in sorted(oos_per_basic)},
        "latest_inspection_date": latest.isoformat() if latest else None,
        "upstream_as_of": fetch.upstream_as_of.isoformat() if fetch.upstream_as_of else None,
    }


# ---------------------------------------------------------------------------------------------------
# change facts

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
