"""What the status view shows of one read of a carrier's violations."""

from __future__ import annotations

from collections import Counter
from typing import Final

from pydantic import JsonValue

from fmcsa_source_violations.domain.model import Violation, ViolationsFetch

ROWS_MAX: Final = 500
"""At most this many violation rows go in one summary (the newest by inspection date): with
`DESCRIPTION_MAX` this keeps a `SourceSynced` under 200 KB, below the 256 KiB every consumer
decodes (`fmcsa_events.decoder.MAX_PAYLOAD_BYTES`). A carrier with more says `rows_complete: false`."""

DESCRIPTION_MAX: Final = 200
"""The longest `description` (the upstream's `section_desc`) a summary row carries; a longer one is
cut there and ends with `…` (display text: the source's store keeps it whole)."""


def summarize(fetch: ViolationsFetch) -> dict[str, JsonValue]:
    """What the status view shows: totals, out-of-service count, distinct inspections, counts per BASIC
    (`unknown` for a label this client does not know), latest inspection date (ISO) and the as-of, and
    the rows themselves for the carrier record (`rows`: the newest `ROWS_MAX` by inspection date, each
    `violation_row`; `rows_complete`: whether that is every row of the window; both added for the
    carrier record, so an older event lacks them and a reader takes the rows as unknown).
    """
    per_basic = Counter(v.basic.value if v.basic else "unknown" for v in fetch.records)
    oos_per_basic = Counter(v.basic.value if v.basic else "unknown" for v in fetch.records if v.oos)
    latest = max((v.insp_date for v in fetch.records), default=None)
    newest = sorted(fetch.records, key=lambda v: (v.insp_date, v.key), reverse=True)[:ROWS_MAX]
    return {
        "total": len(fetch.records),
        "oos": sum(1 for v in fetch.records if v.oos),
        "inspections": len({v.unique_id for v in fetch.records}),
        "per_basic": {key: per_basic[key] for key in sorted(per_basic)},
        "oos_per_basic": {key: oos_per_basic[key] for key in sorted(oos_per_basic)},
        "latest_inspection_date": latest.isoformat() if latest else None,
        "upstream_as_of": fetch.upstream_as_of.isoformat() if fetch.upstream_as_of else None,
        "rows": [violation_row(v) for v in newest],
        "rows_complete": len(fetch.records) <= ROWS_MAX,
    }


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
