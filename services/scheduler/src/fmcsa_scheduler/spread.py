"""`python -m fmcsa_scheduler.spread COMPANIES INTERVAL_MINUTES`: how the scheduler spreads due times.

Prints one JSON object: per source key, the requests due in each minute of one slot of an
`INTERVAL_MINUTES` interval schedule with `COMPANIES` registered companies, from the scheduler's own
due-time function (`domain.due_in_slot`, which the timetable uses). Pure: no bus, no store. The bench
(`bench/scheduler.py`, `spread_max_min_ratio`) runs it as a process, as it imports no service.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from fmcsa_events.identifiers import SourceKey
from fmcsa_scheduler.domain import MINUTE_MS, IntervalTiming, due_in_slot

SLOT_AT_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: any slot spreads alike


def spread_counts(companies: int, interval_minutes: int) -> dict[str, list[int]]:
    """Requests per minute of one slot, per source."""
    slot = IntervalTiming(interval_minutes).slot_at(SLOT_AT_MS)
    counts: dict[str, list[int]] = {}
    for source in SourceKey:
        per_minute = Counter(
            (due_in_slot(i, source, slot).due_ms - slot[0]) // MINUTE_MS for i in range(companies)
        )
        counts[str(source)] = [per_minute.get(m, 0) for m in range(interval_minutes)]
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fmcsa_scheduler.spread", description="Requests per minute of one slot, per source."
    )
    parser.add_argument("companies", type=int)
    parser.add_argument("interval_minutes", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(spread_counts(args.companies, args.interval_minutes)))


if __name__ == "__main__":
    main()
