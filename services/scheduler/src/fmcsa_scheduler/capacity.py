"""How much each source can serve, and what follows from it. Pure: no I/O, no clock.

A source's **capacity** is its current pace (upstream calls per second, all its replicas together: the
adaptive pace the source keeps in the KV bucket `fmcsa_pace`, see `fmcsa_source_kit.pacing`) divided
by the upstream calls one sync costs. Two figures come out of it:

- `full_syncs_per_s`: every sync at its full cost (`calls_per_sync`). The **in-flight cap** is built on
  it: `floor(full_syncs_per_s x deadline x safety)`, at least 1. Requests queued at a source are served
  one after another at the pace, so no more than the cap is ever waiting and even if every one of them
  costs full price the last is served within `safety` of its deadline: none ends `timeout` for lack of
  capacity. The cap bounds the queue, not the rate (Little's law): when syncs cost less the queue
  drains faster and the scheduler refills it at the next tick, so freshness savings still raise the
  throughput without raising the risk. Below 1.33 calls/s a client spaces its calls `1 / pace + 0.25` s
  apart (the kit's `client_bucket`, so that a call may arrive 0.25 s late without a 429): 0.8 calls/s at
  a pace of 1/s, which the default safety of 0.8 absorbs.
- `syncs_per_s`: the expected rate, less what freshness checks save. A `SourceSynced` with
  `checked_unchanged` read no page (the source checked the upstream's publication once for many
  carriers), so it costs no call; the share of such outcomes among a source's recent ones
  (`RecentOutcomes`) lowers the expected cost of a sync, never below `MIN_COST_SHARE` of the full one.
  The **cycle** figure uses it: how long the registered companies take to be synced once, against the
  source's interval ("csa: 100,000 companies need 27.8 h a cycle at 1 sync/s; interval 6 h").

Calls per sync (`DEFAULT_CALLS_PER_SYNC`, overridable per source by the scheduler's
`calls_per_sync` setting) are what each source's client spends on a small carrier; the sources
publish no such figure, so the table documents their code (docs/upstreams.md, the clients' docstrings):

| source | calls a sync | why |
|---|---|---|
| csa | 2 | QCMobile `GET /carriers/{dot}`, then `/carriers/{dot}/basics` |
| violations | 1 | Socrata, one page of up to 1,000 rows (a large carrier reads more pages) |
| inspections | 1 | SaferWebAPI `GET /v2/usdot/snapshot/{dot}` |
| authority | 5 | four QCMobile calls and one DataHub page of insurance filings |

A source with several upstream hosts (authority: QCMobile and DataHub) has one pace per host; the
slowest live one is taken for all its calls (conservative). Until a source has written a pace, its
default ceiling (`DEFAULT_PACE_PER_S`, the sources' own `RATE_PER_S` defaults) stands in.

Times: the scheduler's clock may run `time_scale` times faster than real time (tests only); paces are
real calls per second, deadlines and intervals the scheduler's, so every figure here converts.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fmcsa_events.identifiers import SourceKey

DEFAULT_CALLS_PER_SYNC: Mapping[SourceKey, float] = {
    SourceKey.CSA: 2.0,
    SourceKey.VIOLATIONS: 1.0,
    SourceKey.INSPECTIONS: 1.0,
    SourceKey.AUTHORITY: 5.0,
}
"""Upstream calls one sync of a small carrier costs, per source (the table in the module docstring)."""

DEFAULT_PACE_PER_S: Mapping[SourceKey, float] = {
    SourceKey.CSA: 2.0,
    SourceKey.VIOLATIONS: 2.0,
    SourceKey.INSPECTIONS: 1.0,
    SourceKey.AUTHORITY: 2.0,
}
"""The sources' default `RATE_PER_S` (their pace's ceiling): the pace assumed until a source writes one."""

MIN_COST_SHARE = 0.05
"""A sync is never counted as cheaper than this share of its full cost, however many freshness checks
found nothing new (the share is an estimate from the past; the next publication makes every sync full)."""

RECENT_OUTCOMES = 500
"""How many of a source's latest `SourceSynced` the freshness share is estimated from."""

NEVER_SYNCED = 0
"""The staleness of a company never synced (or whose last sync the scheduler does not know): first."""


@dataclass(frozen=True, slots=True)
class Capacity:
    """One source's capacity: its pace, what a sync costs, and the share of syncs that cost nothing."""

    source: SourceKey
    pace_per_s: float
    calls_per_sync: float
    unchanged_share: float = 0.0
    pace_known: bool = True  # False: the default ceiling, no source has written its pace yet

    @property
    def full_syncs_per_s(self) -> float:
        """Syncs per second if every one costs `calls_per_sync` (what the in-flight cap is built on)."""
        return self.pace_per_s / self.calls_per_sync

    @property
    def cost_per_sync(self) -> float:
        """Expected calls per sync: freshness checks that found nothing new cost none."""
        share = min(1.0, max(0.0, self.unchanged_share))
        return self.calls_per_sync * max(MIN_COST_SHARE, 1.0 - share)

    @property
    def syncs_per_s(self) -> float:
        """Expected syncs per second (real time)."""
        return self.pace_per_s / self.cost_per_sync


def in_flight_cap(capacity: Capacity, *, deadline_s: float, safety: float, time_scale: float = 1.0) -> int:
    """Most requests of the source that may be open at once: what it serves within `safety` x the
    deadline (`deadline_s` on the scheduler's clock) at full cost; at least one.
    """
    real_deadline_s = deadline_s / time_scale
    return max(1, math.floor(capacity.full_syncs_per_s * real_deadline_s * safety))


@dataclass(frozen=True, slots=True)
class Cycle:
    """Whether the registered companies can all be synced once within the source's interval."""

    companies: int
    hours_needed: float  # scheduler hours to sync every company once at the expected rate
    interval_hours: float
    syncs_per_s: float

    @property
    def behind(self) -> bool:
        return self.hours_needed > self.interval_hours

    def message(self, source: SourceKey) -> str:
        """E.g. `csa: 100,000 companies need 27.8 h a cycle at 1 sync/s; interval 6 h`."""
        return (
            f"{source}: {self.companies:,} companies need {_duration(self.hours_needed)} a cycle at "
            f"{self.syncs_per_s:.3g} sync/s; interval {_duration(self.interval_hours)}"
        )


def cycle(companies: int, capacity: Capacity, *, interval_s: float, time_scale: float = 1.0) -> Cycle:
    """The cycle of `companies` at the expected rate against an interval of `interval_s` (scheduler time)."""
    needed_s = companies / capacity.syncs_per_s * time_scale
    return Cycle(companies, needed_s / 3600, interval_s / 3600, capacity.syncs_per_s)


def _duration(hours: float) -> str:
    if hours >= 1:
        return f"{hours:.1f}".removesuffix(".0") + " h"
    return f"{hours * 60:.3g} min"


def paces_from(documents: Mapping[str, bytes], live: Iterable[str] = ()) -> dict[SourceKey, float]:
    """Each source's pace from the `fmcsa_pace` bucket: `documents` maps a key (`<source>.<host>`) to its
    JSON document (`{"rate": calls/s, ...}`), `live` the keys that have a live replica. Per source the
    slowest live host; with none live, the slowest of all it ever wrote (the last pace known). A source
    with no readable document is absent (the caller falls back to `DEFAULT_PACE_PER_S`).
    """
    live_keys = set(live)
    found: dict[SourceKey, list[tuple[bool, float]]] = {}
    for key, raw in documents.items():
        source_text, _, _host = key.partition(".")
        try:
            source = SourceKey(source_text)
            rate = float(json.loads(raw)["rate"])
        except (ValueError, KeyError, TypeError):  # an unknown source, or a document without a pace
            continue
        if math.isfinite(rate) and rate > 0:
            found.setdefault(source, []).append((key in live_keys, rate))
    paces: dict[SourceKey, float] = {}
    for source, rates in found.items():
        alive = [rate for is_live, rate in rates if is_live]
        paces[source] = min(alive or [rate for _, rate in rates])
    return paces


class RecentOutcomes:
    """Per source, whether each of its latest `window` syncs was a freshness check that found nothing new."""

    def __init__(self, window: int = RECENT_OUTCOMES) -> None:
        self._seen: dict[SourceKey, deque[bool]] = {s: deque(maxlen=window) for s in SourceKey}
        self._unchanged: dict[SourceKey, int] = dict.fromkeys(SourceKey, 0)

    def add(self, source: SourceKey, *, checked_unchanged: bool) -> None:
        seen = self._seen[source]
        if len(seen) == seen.maxlen and seen[0]:
            self._unchanged[source] -= 1
        seen.append(checked_unchanged)
        self._unchanged[source] += checked_unchanged

    def share(self, source: SourceKey) -> float:
        """The share of recent syncs that were `checked_unchanged`; 0 before any."""
        seen = len(self._seen[source])
        return self._unchanged[source] / seen if seen else 0.0


def staleness_order(last_synced_ms: int, index: int) -> tuple[int, int]:
    """The order companies waiting for capacity are served in: the oldest last successful sync first
    (`NEVER_SYNCED`, 0, before any), then the lower company number.
    """
    return (max(NEVER_SYNCED, last_synced_ms), index)
