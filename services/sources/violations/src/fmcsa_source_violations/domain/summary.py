"""What the status view shows of one read of a carrier's violations."""

from __future__ import annotations

from collections import Counter

from pydantic import JsonValue

from fmcsa_source_violations.domain.model import ViolationsFetch


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
