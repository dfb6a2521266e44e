"""What the status view shows of one read of a carrier's violations."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Final

from pydantic import JsonValue

from fmcsa_events.models import VIOLATIONS_PAGE_ROWS, SourceSynced, ViolationsListed
from fmcsa_source_violations.domain.model import Violation, ViolationsFetch

ROWS_MAX: Final = VIOLATIONS_PAGE_ROWS
"""At most this many violation rows go in one event (the outcome's summary, or one `ViolationsListed`
page); `paginate` cuts a longer list into pages."""

ROWS_BYTES_MAX: Final = 150_000
"""At most this many bytes of rows (their UTF-8 JSON) go in one event, whatever the count: with the
rest of a summary this keeps each event under 200 KB, below the 256 KiB every consumer decodes
(`fmcsa_events.decoder.MAX_PAYLOAD_BYTES`), also when descriptions are not ASCII."""

DESCRIPTION_MAX: Final = 200
"""The longest `description` (the upstream's `section_desc`) a summary row carries; a longer one is
cut there and ends with `…` (display text: the source's store keeps it whole)."""


def summarize(fetch: ViolationsFetch) -> dict[str, JsonValue]:
    """What the status view shows: totals, out-of-service count, distinct inspections, counts per BASIC
    (`unknown` for a label this client does not know), latest inspection date (ISO) and the as-of, and
    the rows themselves for the carrier record (`rows`: every row of the window, newest inspection
    first, each `violation_row`; `rows_total`: how many; `rows_complete`: whether `rows` and the pages
    `paginate` cuts from them are every row of the window). The runner calls `paginate` on the outcome
    before it is saved: the published summary lists at most `ROWS_MAX` rows. `rows` and
    `rows_complete` were added for the carrier record, `rows_total` with the pages, so an older event
    lacks them and a reader takes the rows as unknown (or as the `rows` it lists).
    """
    per_basic = Counter(v.basic.value if v.basic else "unknown" for v in fetch.records)
    oos_per_basic = Counter(v.basic.value if v.basic else "unknown" for v in fetch.records if v.oos)
    latest = max((v.insp_date for v in fetch.records), default=None)
    newest = sorted(fetch.records, key=lambda v: (v.insp_date, v.key), reverse=True)
    return {
        "total": len(fetch.records),
        "oos": sum(1 for v in fetch.records if v.oos),
        "inspections": len({v.unique_id for v in fetch.records}),
        "per_basic": {key: per_basic[key] for key in sorted(per_basic)},
        "oos_per_basic": {key: oos_per_basic[key] for key in sorted(oos_per_basic)},
        "latest_inspection_date": latest.isoformat() if latest else None,
        "upstream_as_of": fetch.upstream_as_of.isoformat() if fetch.upstream_as_of else None,
        "rows": [violation_row(v) for v in newest],
        "rows_total": len(newest),
        "rows_complete": True,
    }


def paginate(outcome: SourceSynced) -> tuple[SourceSynced, tuple[ViolationsListed, ...]]:
    """Cut a success whose summary lists more than `ROWS_MAX` rows: the outcome keeps the first
    `ROWS_MAX` and the rest go in `ViolationsListed` pages of at most `ROWS_MAX` each, at their offsets
    (pure; the same outcome gives the same pages). A summary with fewer rows is left as it is.
    """
    listed = outcome.summary.get("rows")
    rows = [row for row in listed if isinstance(row, dict)] if isinstance(listed, list) else []
    cuts = _cuts(rows)
    if len(cuts) <= 2:
        return outcome, ()
    total = len(rows)
    pages = tuple(
        ViolationsListed(
            request_id=outcome.request_id,
            dot=outcome.dot,
            offset=start,
            total=total,
            rows=tuple(rows[start:end]),
        )
        for start, end in itertools.pairwise(cuts[1:])
    )
    summary = {**outcome.summary, "rows": list(rows[: cuts[1]]), "rows_total": total}
    return outcome.model_copy(update={"summary": summary}), pages


def _cuts(rows: list[dict[str, JsonValue]]) -> list[int]:
    """Where the slices of `rows` start, and the end: each slice at most `ROWS_MAX` rows and
    `ROWS_BYTES_MAX` bytes (a single larger row is a slice of its own).
    """
    cuts, count, size = [0], 0, 0
    for index, row in enumerate(rows):
        width = len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()) + 1
        if count and (count == ROWS_MAX or size + width > ROWS_BYTES_MAX):
            cuts.append(index)
            count, size = 0, 0
        count, size = count + 1, size + width
    cuts.append(len(rows))
    return cuts


def violation_row(violation: Violation) -> dict[str, JsonValue]:
    """One row as the carrier record keeps it: `inspection` (the upstream's `unique_id`), `code`,
    `unit`, `ordinal` (together with the DOT: the row's key), `date` (ISO), `basic` (a `Basic` key, or
    None for a label this client does not know), `oos`, `severity` (weight), `group` and `description`
    (cut at `DESCRIPTION_MAX`).
    """
    description = violation.section_desc
    if description is not None and len(description) > DESCRIPTION_MAX:
        description = description[: DESCRIPTION_MAX - 1] + "\u2026"
    return {
        "inspection": violation.unique_id,
        "code": violation.viol_code,
        "unit": violation.viol_unit,
        "ordinal": violation.ordinal,
        "date": violation.insp_date.isoformat(),
        "basic": violation.basic.value if violation.basic else None,
        "oos": violation.oos,
        "severity": violation.severity_weight,
        "group": violation.group_desc,
        "description": description,
    }
