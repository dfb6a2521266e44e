"""The admin page's charts as inline SVG geometry (no JavaScript, no CDN).

Pure: values in, shapes out. `outcome_chart`: each day is one column, succeeded stacked under failed,
all sources together, scaled to the busiest day. `trend_chart`: one line per series (a CSA BASIC's
percentile by as-of date) on a fixed 0-100 scale, broken where a value is unknown (Not Public).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

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


TREND_WIDTH = 600
TREND_HEIGHT = 180
TREND_LEFT = 28
"""Room for the scale's labels left of the plot."""
TREND_PAD = 8


@dataclass(frozen=True, slots=True)
class TrendPoint:
    as_of: date
    value: float
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class TrendLine:
    """One series: its points, and the polylines joining neighbours that both have a value."""

    subject: str
    points: list[TrendPoint]
    segments: list[str]
    unknown: int

    @property
    def label(self) -> str:
        return self.subject.replace("_", " ")

    @property
    def latest(self) -> TrendPoint | None:
        return self.points[-1] if self.points else None


@dataclass(frozen=True, slots=True)
class TrendChart:
    lines: list[TrendLine]
    first: date | None
    last: date | None
    width: int = TREND_WIDTH
    height: int = TREND_HEIGHT
    axis: int = AXIS
    left: int = TREND_LEFT

    @property
    def ticks(self) -> list[tuple[int, float]]:
        """The scale's labelled values and their heights: 0, 50 and 100."""
        return [(value, _y(float(value))) for value in (0, 50, 100)]


def _y(value: float) -> float:
    plot = TREND_HEIGHT - AXIS - TREND_PAD
    return round(TREND_PAD + plot * (1 - min(max(value, 0.0), 100.0) / 100), 2)


def trend_chart(series: Iterable[tuple[str, Sequence[tuple[datetime, float | None]]]]) -> TrendChart:
    """Lines for `(subject, [(as_of, value or None)])` series, on a shared time axis and a 0-100 scale.

    A None value (Not Public, too few inspections) draws no point and breaks the line: an unknown is never
    drawn as a 0. Series with no known value at all are left out; no series at all gives no lines.
    """
    rows = [(subject, sorted(points, key=lambda p: p[0])) for subject, points in series]
    days = sorted({moment.date() for _, points in rows for moment, value in points if value is not None})
    if not days:
        return TrendChart(lines=[], first=None, last=None)
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)
    plot_width = TREND_WIDTH - TREND_LEFT - 2 * TREND_PAD

    def x(day: date) -> float:
        if first == last:
            return round(TREND_LEFT + TREND_PAD + plot_width / 2, 2)
        return round(TREND_LEFT + TREND_PAD + plot_width * (day - first).days / span, 2)

    lines = []
    for subject, points in rows:
        drawn: list[TrendPoint] = []
        segments: list[str] = []
        run: list[TrendPoint] = []
        unknown = 0
        for moment, value in points:
            if value is None:
                unknown += 1
                if len(run) > 1:
                    segments.append(" ".join(f"{p.x},{p.y}" for p in run))
                run = []
                continue
            point = TrendPoint(as_of=moment.date(), value=value, x=x(moment.date()), y=_y(value))
            drawn.append(point)
            run.append(point)
        if len(run) > 1:
            segments.append(" ".join(f"{p.x},{p.y}" for p in run))
        if drawn:
            lines.append(TrendLine(subject=subject, points=drawn, segments=segments, unknown=unknown))
    return TrendChart(lines=lines, first=first, last=last)
