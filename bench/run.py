"""`python -m bench.run [--quick]`: every figure of issue 11, each beside its baseline from the same run.

Stages run one after another (never side by side: the box has two cores) and each prints its figures
and goals as it finishes. A stage that fails prints why and records null for its keys; the others
still run. At the end: the table (key, value, goal, met?), the total time, and
`bench/results/<UTC timestamp>.json` (git-ignored). What each stage does is in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Scale:
    """How big each stage is; `QUICK` fits in under three minutes on two cores, `FULL` in about ten."""

    mode: str
    companies: int  # the full sync
    rate_per_s: float  # per source, in the sandbox and in the source services alike
    latency_ms: float  # sandbox base latency per upstream call
    source_concurrency: int  # FMCSA_<SOURCE>_CONCURRENCY: requests (and calls) in flight per source
    sequential_sample: int
    trigger_samples: int
    events: int  # the stream replayed by the fold-ratio and rebuild stages
    event_companies: int  # companies in that stream (= in the projection the gateway serves)
    load_seconds: float
    gateway_rate: float
    scheduler_companies: int
    spread_companies: int
    spread_interval_minutes: int
    webhook_changes: int  # CarrierDataChanged published one at a time for change_to_webhook_p95_ms
    webhook_interval_ms: float  # between two of them
    snapshot_events: int  # the log of rebuild_from_snapshot_seconds (bench.snapshot)
    snapshot_at: int  # the position of its snapshot
    snapshot_companies: int
    gate_check_s: float = 10.0  # the change gates' check period (`bench.delta`); the cycle waits two

    def settings(self) -> dict[str, Any]:
        return dict(self.__dict__)


FULL = Scale(
    mode="full",
    companies=2_000,
    rate_per_s=20.0,
    latency_ms=300.0,
    source_concurrency=32,
    sequential_sample=30,
    trigger_samples=30,
    events=1_000_000,
    event_companies=100_000,
    load_seconds=20.0,
    gateway_rate=500.0,
    scheduler_companies=100_000,
    spread_companies=2_000,
    spread_interval_minutes=360,
    webhook_changes=200,
    webhook_interval_ms=100.0,
    snapshot_events=10_000_000,  # issue 26: 10 million events, a snapshot at 9 million
    snapshot_at=9_000_000,
    snapshot_companies=1_000_000,
)
QUICK = Scale(
    mode="quick",
    companies=200,
    rate_per_s=20.0,
    latency_ms=300.0,
    source_concurrency=32,
    sequential_sample=4,
    trigger_samples=5,
    events=100_000,
    event_companies=10_000,
    load_seconds=5.0,
    gateway_rate=500.0,
    scheduler_companies=100_000,
    spread_companies=2_000,
    spread_interval_minutes=360,
    webhook_changes=50,
    webhook_interval_ms=100.0,
    snapshot_events=100_000,
    snapshot_at=90_000,
    snapshot_companies=10_000,
)

SMOKE = Scale(  # the system test's: every stage, every key, in about a minute; figures mean little
    mode="smoke",
    companies=12,
    rate_per_s=50.0,  # well above what 12 companies need: a smoke measures nothing, it runs
    latency_ms=50.0,
    source_concurrency=32,
    sequential_sample=2,
    trigger_samples=2,
    events=5_000,
    event_companies=1_000,
    load_seconds=2.0,
    gateway_rate=100.0,
    scheduler_companies=5_000,
    spread_companies=2_000,
    spread_interval_minutes=360,
    webhook_changes=5,
    webhook_interval_ms=100.0,
    snapshot_events=5_000,
    snapshot_at=4_500,
    snapshot_companies=500,
    gate_check_s=2.0,
)
SCALES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}


@dataclass
class Context:
    """What a stage gets: its scale, a scratch folder, and where its figures and details go."""

    scale: Scale
    workdir: Path
    results: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # handed from one stage to a later one

    def record(self, key: str, value: float | None) -> None:
        self.results[key] = value
        print(report.stage_line(key, value, self.results), flush=True)

    def note(self, stage: str, **values: Any) -> None:
        self.details.setdefault(stage, {}).update(values)


StageFn = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Stage:
    name: str
    keys: tuple[str, ...]
    budget_s: dict[str, float]  # per mode
    load: Callable[[], StageFn]


def _stages() -> list[Stage]:
    # Imported lazily, so `--help` and the unit tests load no service.
    def pipeline() -> StageFn:
        from bench import pipeline as module

        return module.run

    def events() -> StageFn:
        from bench import projection as module

        return module.run_events

    def gateway() -> StageFn:
        from bench import projection as module

        return module.run_gateway

    def scheduler() -> StageFn:
        from bench import scheduler as module

        return module.run

    def webhooks() -> StageFn:
        from bench import webhooks as module

        return module.run

    def snapshot() -> StageFn:
        from bench import snapshot as module

        return module.run

    return [
        Stage(
            "pipeline",
            (
                "rate_utilization",
                "sandbox_429s",
                "rate_utilization_loaded",
                "sandbox_429s_loaded",
                "speedup_vs_sequential",
                "trigger_to_visible_p95_ms",
                "upstream_calls_per_carrier_cycle",
                "carriers_kept_fresh_at_default_limits",
                "delta_equals_full",
            ),
            {"quick": 360, "full": 3000},
            pipeline,
        ),
        Stage(
            "events", ("fold_ratio_vs_raw_read", "rebuild_1m_seconds"), {"quick": 150, "full": 1800}, events
        ),
        Stage(
            "gateway", ("gateway_p99_ms", "gateway_rps_ratio_vs_bare"), {"quick": 100, "full": 300}, gateway
        ),
        Stage(
            "scheduler", ("scheduler_rss_mb", "spread_max_min_ratio"), {"quick": 100, "full": 200}, scheduler
        ),
        Stage("webhooks", ("change_to_webhook_p95_ms",), {"quick": 120, "full": 200}, webhooks),
        Stage(
            "snapshot",
            ("rebuild_from_snapshot_seconds", "rebuild_10m_seconds"),
            {"quick": 240, "full": 4 * 3600},
            snapshot,
        ),
    ]


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    return info


async def run_all(scale: Scale, only: set[str] | None, workdir: Path) -> Context:
    ctx = Context(scale=scale, workdir=workdir)
    for stage in _stages():
        if only and stage.name not in only:
            continue
        budget = stage.budget_s.get(scale.mode, stage.budget_s["quick"])
        print(f"\n== {stage.name} (budget {budget:.0f} s)", flush=True)
        started = time.monotonic()
        try:
            fn = stage.load()
            await asyncio.wait_for(fn(ctx), timeout=budget)
        except Exception as error:  # a failed stage records null and the run goes on
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if isinstance(error, TimeoutError):
                reason = f"did not finish within its budget of {budget:.0f} s"
            ctx.errors[stage.name] = reason
            print(f"  {stage.name} failed: {reason}", flush=True)
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc()
        for key in stage.keys:
            if key not in ctx.results:
                ctx.record(key, None)
        ctx.note(stage.name, seconds=round(time.monotonic() - started, 1))
    leftover = ctx.shared.pop("events_nats", None)  # when the gateway stage did not run to stop it
    if leftover is not None:
        leftover.stop()
    return ctx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fmcsa bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the smaller run (under 3 minutes)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # the system test's
    parser.add_argument("--only", action="append", help="run only this stage (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/<ts>.json)")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # each figure shows as its stage finishes
    scale = SMOKE if args.smoke else QUICK if args.quick else FULL
    started_at = datetime.now(UTC)
    began = time.monotonic()
    host = machine()
    print(f"fmcsa bench ({scale.mode}) on {os.cpu_count()} cores; settings: {json.dumps(scale.settings())}")
    with tempfile.TemporaryDirectory(prefix="fmcsa-bench-") as scratch:
        ctx = asyncio.run(run_all(scale, set(args.only) if args.only else None, Path(scratch)))
    total = time.monotonic() - began
    doc = report.document(
        mode=scale.mode,
        started_at=started_at.isoformat(),
        total_s=total,
        results=ctx.results,
        details=ctx.details,
        errors=ctx.errors,
        machine=host,
        settings=scale.settings(),
    )
    out = args.out or RESULTS / f"{started_at:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print("\n" + report.table(ctx.results))
    print(f"\ntotal {total:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
