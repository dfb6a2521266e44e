"""The seeds' `syncStatus` block, for clients that know only that shape.

    {"lastRun": ..., "success": ..., "errors": [{"source", "error", "timestamp"}],
     "csaScoresLastSync": ..., "violationsLastSync": ..., "inspectionsLastSync": ...,
     "authorityLastSync": ...}

Times are ISO 8601 UTC with milliseconds and a `Z` (JavaScript's `toISOString()`), or null.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import JsonValue

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.models import CompanyStatus

LAST_SYNC_KEYS: dict[SourceKey, str] = {
    SourceKey.CSA: "csaScoresLastSync",
    SourceKey.VIOLATIONS: "violationsLastSync",
    SourceKey.INSPECTIONS: "inspectionsLastSync",
    SourceKey.AUTHORITY: "authorityLastSync",
}


SYNC_TYPES: dict[SourceKey, str] = {
    SourceKey.CSA: "csa_scores",
    SourceKey.VIOLATIONS: "violations",
    SourceKey.INSPECTIONS: "inspections",
    SourceKey.AUTHORITY: "authority",
}
"""The seeds' name of each source (their `syncType`, and `source` in `errors`); `authority` has none there."""


def js_time(moment: datetime | None) -> str | None:
    """`2026-11-23T06:00:00.000Z`, as JavaScript's `Date.toISOString()` writes it."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    if utc.year < 1000:  # strftime writes such a year unpadded, isoformat with four digits
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    # the same text without strftime (a tenth of the seeds' block): milliseconds truncated, as before
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def sync_status_block(status: CompanyStatus | None) -> dict[str, JsonValue]:
    """The seeds' shape for one company (all nulls and no errors for an unknown company).

    `lastRun` is the newest finished outcome of any source; `success` is true when the company has
    run and no source is failing; `errors` lists each failing source's newest error (its message for
    people, `source` in the seeds' names: `csa_scores`, not `csa`); `<source>LastSync` is that source's
    last successful fetch (`authorityLastSync` is this system's own addition: the seeds knew three).
    """
    errors: list[JsonValue] = []
    block: dict[str, JsonValue] = {
        "lastRun": js_time(status.last_run) if status else None,
        "success": bool(status and status.success),
        "errors": errors,
    }
    for source, key in LAST_SYNC_KEYS.items():
        mine = status.sources.get(source) if status else None
        block[key] = js_time(mine.last_success_at) if mine else None
        if mine is not None and mine.failing and mine.last_error is not None:
            error = mine.last_error
            at = js_time(error.at)
            errors.append({"source": SYNC_TYPES[source], "error": error.message, "timestamp": at})
    return block
