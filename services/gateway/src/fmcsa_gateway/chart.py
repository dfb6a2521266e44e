"""The admin page's chart of sync outcomes per day, as inline SVG geometry (no JavaScript, no CDN).

Pure: outcomes in, bars out. Each day is one column: succeeded stacked under failed, all sources
together, scaled to the busiest day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

WIDTH = 600
HEIGHT = 140
AXIS = 18


@dataclass(frozen=True, slots=True)
class Bar:
    day: date
    x: float
    width: float
    succeeded: int
    failed: int
    ok_y: float
    ok_height: float
    bad_y: float
    bad_height: float

    @property
    def label(self) -> str:
        return f"{self.day.isoformat()}: {self.succeeded} succeeded, {self.failed} failed"


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    peak: int
    first: date | None
    last: date | None
    width: int = WIDTH
    height: int = HEIGHT
    axis: int = AXIS


def outcome_chart(outcomes: Iterable[tuple[date, int, int]], *, days: int = 30) -> Chart:
    """Bars for the `days` days up to the newest day with outcomes; rows are (day, succeeded, failed)."""
    per_day: dict[date, list[int]] = {}
    for day, succeeded, failed in outcomes:
        counts = per_day.setdefault(day, [0, 0])
        counts[0] += succeeded
        counts[1] += failed
    if not per_day:
        return Chart(bars=[], peak=0, first=None, last=None)
    last = max(per_day)
    first = last - timedelta(days=days - 1)
    peak = max(max(ok + bad for ok, bad in per_day.values()), 1)
    plot = HEIGHT - AXIS
    slot = WIDTH / days
    bars = []
    for index in range(days):
        day = first + timedelta(days=index)
        ok, bad = per_day.get(day, [0, 0])
        ok_height = plot * ok / peak
        bad_height = plot * bad / peak
        bars.append(
            Bar(
                day=day,
                x=round(index * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                succeeded=ok,
                failed=bad,
                ok_y=round(plot - ok_height, 2),
                ok_height=round(ok_height, 2),
                bad_y=round(plot - ok_height - bad_height, 2),
                bad_height=round(bad_height, 2),
            )
        )
    return Chart(bars=bars, peak=peak, first=first, last=last)
