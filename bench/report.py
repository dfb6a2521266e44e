"""Pure pieces of the benchmark: the goals, percentiles, scaling, the table and the JSON document.

Nothing here does I/O or reads a clock, so it unit-tests in milliseconds
(`tools/cli/tests/unit/test_bench_report.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Goal:
    """One key of issue 11: what it measures, its goal (`at least` or `at most` a bound), its unit."""

    key: str
    what: str
    at_least: float | None = None
    at_most: float | None = None
    unit: str = ""
    times: str | None = None  # `at_most` is a multiple of this other key's figure of the same run

    def met(self, value: float | None, results: Mapping[str, float | None] | None = None) -> bool | None:
        """True or False against the goal; None when there is no figure (or, for a goal relative to
        another key, when `results` has none for it).
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.at_least is not None and value < self.at_least:
            return False
        bound = self.at_most
        if self.times is not None:
            other = (results or {}).get(self.times)
            if other is None or bound is None or math.isnan(other):
                return None
            bound *= other
        return not (bound is not None and value > bound)

    @property
    def text(self) -> str:
        if self.at_least is not None:
            return f">= {_number(self.at_least)}{self.unit}"
        if self.times is not None:
            return f"<= {_number(self.at_most or 0)} x {self.times}"
        return f"<= {_number(self.at_most or 0)}{self.unit}"


MILLION_GOAL = 1_000_000
GOALS: tuple[Goal, ...] = (
    Goal("rate_utilization", "full sync: achieved upstream request rate / allowed rate", at_least=0.95),
    Goal("sandbox_429s", "429s the sandbox served during the full sync", at_most=0),
    Goal(
        "rate_utilization_loaded",
        "the same full sync while another process keeps both cores busy",
        at_least=0.95,
    ),
    Goal("sandbox_429s_loaded", "429s the sandbox served during the loaded full sync", at_most=0),
    Goal("speedup_vs_sequential", "sequential loop time (sample, scaled) / pipeline time", at_least=10),
    Goal("fold_ratio_vs_raw_read", "projector events/s / bare ordered-consumer events/s", at_least=0.5),
    Goal("rebuild_1m_seconds", "rebuild-status over 1,000,000 events (SQLite)", at_most=40, unit=" s"),
    Goal("gateway_p99_ms", "company status GET p99 at 500 req/s, 100k companies", at_most=10, unit=" ms"),
    Goal("gateway_rps_ratio_vs_bare", "status GET req/s / bare Litestar endpoint req/s", at_least=0.5),
    Goal("scheduler_rss_mb", "scheduler resident memory with 100,000 companies x 3 sources", at_most=150),
    Goal("spread_max_min_ratio", "busiest / quietest minute of requests over one interval", at_most=1.2),
    Goal("trigger_to_visible_p95_ms", "POST trigger -> status visible, minus sandbox latency", at_most=1000),
    Goal("change_to_webhook_p95_ms", "CarrierDataChanged published -> its webhook received", at_most=1000),
    Goal(
        "rebuild_from_snapshot_seconds",
        "rebuild-status to a ready store, 10M events in the log, a snapshot at 9M (SQLite)",
        at_most=300,
        unit=" s",
    ),
    Goal(
        "rebuild_10m_seconds",
        "rebuild-status over 10,000,000 events, 1,000,000 companies (SQLite): linear in the log",
        at_most=10.5,
        times="rebuild_1m_seconds",
    ),
)
GOALS += (
    Goal(
        "upstream_calls_per_carrier_cycle",
        "upstream calls / carriers over a cycle after a full sync, 5% of carriers changed (all sources)",
        at_most=0.8,
    ),
    Goal(
        "carriers_kept_fresh_at_default_limits",
        "carriers one deployment keeps within one publication, default limits (binding source)",
        at_least=MILLION_GOAL,
    ),
    Goal("delta_equals_full", "rows differing after delta + reconciliation vs a full refetch", at_most=0),
)
GOAL_BY_KEY: dict[str, Goal] = {goal.key: goal for goal in GOALS}
KEYS: tuple[str, ...] = tuple(goal.key for goal in GOALS)

MILLION = 1_000_000


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` (0..1) percentile by linear interpolation between closest ranks (numpy's default).

    Raises ValueError on no values or a share outside 0..1.
    """
    if not values:
        raise ValueError("no values")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be within 0..1, got {share}")
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def scaled_seconds(*, fixed_s: float, per_event_s: float, events: int, target: int = MILLION) -> float:
    """Seconds for `target` events when a run of `events` took `fixed_s` (start-up, paid once) plus
    `per_event_s` (the fold, proportional to the events): fixed + per_event x target / events.
    """
    if events <= 0:
        raise ValueError("events must be positive")
    return fixed_s + per_event_s * target / events


def sequential_estimate_s(sample_seconds: float, sample_size: int, companies: int) -> float:
    """The sequential loop's time for all `companies`, from a sample of `sample_size` done one at a time."""
    if sample_size <= 0:
        raise ValueError("sample_size must be positive")
    return sample_seconds / sample_size * companies


def utilization(requests: int, window_s: float, rate_per_s: float) -> float:
    """Achieved request rate over the allowed one: requests / (window x rate)."""
    if window_s <= 0 or rate_per_s <= 0:
        raise ValueError("window and rate must be positive")
    return requests / (window_s * rate_per_s)


def max_min_ratio(counts: Sequence[int]) -> float:
    """Busiest over quietest of some per-minute counts; infinity when a minute had none."""
    if not counts:
        raise ValueError("no counts")
    low = min(counts)
    return math.inf if low == 0 else max(counts) / low


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def shown(value: float | None) -> str:
    """A figure for the table: null as `-`, small ratios with three significant digits."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return _number(value)


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[met]


def table(results: Mapping[str, float | None]) -> str:
    """The closing table: key, value, goal, met? (one line per key, in the issue's order)."""
    rows = [("key", "value", "goal", "met?")]
    for goal in GOALS:
        value = results.get(goal.key)
        rows.append((goal.key, shown(value), goal.text, verdict(goal.met(value, results))))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stage_line(key: str, value: float | None, results: Mapping[str, float | None] | None = None) -> str:
    """What a stage prints as it finishes a figure: `key = value (goal ..., met)`."""
    goal = GOAL_BY_KEY[key]
    return f"  {key} = {shown(value)}  (goal {goal.text}: {verdict(goal.met(value, results))})"


def document(
    *,
    mode: str,
    started_at: str,
    total_s: float,
    results: Mapping[str, float | None],
    details: Mapping[str, Any],
    errors: Mapping[str, str],
    machine: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON written to `bench/results/<timestamp>.json`: every key of the issue (null when its stage
    failed), the goal and verdict of each, and what the run was made of.
    """
    figures = {key: _finite(results.get(key)) for key in KEYS}
    return {
        "mode": mode,
        "started_at": started_at,
        "total_seconds": round(total_s, 1),
        "results": figures,
        "goals": {goal.key: goal.text for goal in GOALS},
        "met": {goal.key: goal.met(figures[goal.key], figures) for goal in GOALS},
        "errors": dict(errors),
        "details": dict(details),
        "machine": dict(machine),
        "settings": dict(settings),
    }


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, 4)


DAY_S = 86_400.0
MONTH_S = 30 * DAY_S
CADENCE_S: dict[str, float] = {
    "csa": MONTH_S,
    "violations": MONTH_S,
    "inspections": DAY_S,
    "authority": DAY_S,
}
"""How often each upstream publishes (fresh = never more than one publication behind): the SMS run
monthly (csa's BASICs, violations' `8mt8-2mdr`), SAFER summaries daily, authority and insurance daily."""


def kept_fresh(
    calls_per_carrier: Mapping[str, float],
    rate_per_s: Mapping[str, float],
    cadence_s: Mapping[str, float],
    fixed_calls: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Per upstream limit: how many carriers its calls keep within one publication, i.e. its calls in one
    publication period (`rate_per_s x cadence_s`, less `fixed_calls`: what a period costs whatever the
    number of carriers, e.g. the authority gate's daily difference reads) over the calls one carrier needs
    per publication. Keys of `calls_per_carrier` and `rate_per_s` name a limit (`<source>` or
    `<source>.<host>`); the cadence is the source's (the part before the dot). A limit no carrier spends
    anything of is infinite.
    """
    fresh: dict[str, float] = {}
    for limit, calls in calls_per_carrier.items():
        budget = rate_per_s[limit] * cadence_s[limit.split(".", 1)[0]] - (fixed_calls or {}).get(limit, 0.0)
        fresh[limit] = 0.0 if budget <= 0 else math.inf if calls <= 0 else budget / calls
    return fresh


def gated_calls(listed_share: float, full_refresh_days: float, calls_per_fetch: float) -> float:
    """A change gate's calls per carrier per day: a carrier is fetched when a day's listing names it
    (`listed_share` of them) and once per full refresh whatever it says (the authority gate's daily
    differences, the inspections gate's bulk files).
    """
    return (listed_share + 1 / full_refresh_days) * calls_per_fetch


def gate_fixed_calls(datasets: int, check_s: float) -> float:
    """A change gate's own DataHub calls a day, whatever the number of carriers: a metadata call per
    dataset per check, plus about two reads per dataset (a publication or the rows leaving a window).
    """
    return datasets * (DAY_S / check_s + 2)


def binding(fresh: Mapping[str, float]) -> tuple[str, float]:
    """The limit that keeps the fewest carriers fresh, and how many."""
    limit = min(fresh, key=lambda name: fresh[name])
    return limit, fresh[limit]


def multiset_difference(left: Sequence[Any], right: Sequence[Any]) -> int:
    """How many items are in one of the two and not matched by an equal item in the other."""
    from collections import Counter

    a, b = Counter(left), Counter(right)
    return sum(((a - b) + (b - a)).values())
