"""The scheduler's memory with 100,000 companies x 3 sources, and the spread of its due times.

`scheduler_rss_mb`: a private nats-server; the real scheduler process (`python -m fmcsa_scheduler`,
publishing switched off with FMCSA_SCHEDULER_ENABLED=false so nothing but the registry and the
timetable grows) starts on an empty stream; its resident set is read from /proc (the baseline), then
100,000 `CompanyRegistered` are published; once its heartbeat in `fmcsa_state` counts them all, the
highest resident set over a few seconds is the figure.

`spread_max_min_ratio`: pure, with the scheduler's own due-time functions (`due_in_slot`, which the
timetable uses), run as a process (`python -m fmcsa_scheduler.spread`: the bench imports no service):
N companies, each source's default interval; requests per minute of one slot, per source; the figure
is the worst source's busiest minute over its quietest.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nats

from bench import report
from bench.projection import publish
from fmcsa_embedded import Child, NatsServer, free_port, wait_for_port
from fmcsa_events.models import CompanyRegistered
from fmcsa_events.scheduler_status import SCHEDULER_STATUS_KEY, SchedulerStatus
from fmcsa_events.topology import STATE_BUCKET

if TYPE_CHECKING:
    from bench.run import Context

DOTS_FROM = 5_000_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def run(ctx: Context) -> None:
    spread(ctx)
    await memory(ctx)


def spread_counts(companies: int, interval_minutes: int) -> dict[str, list[int]]:
    """Requests per minute of one slot, per source, from the scheduler's due-time function: run as
    `python -m fmcsa_scheduler.spread` (the bench imports no service).
    """
    done = subprocess.run(
        [sys.executable, "-m", "fmcsa_scheduler.spread", str(companies), str(interval_minutes)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    counts: dict[str, list[int]] = json.loads(done.stdout)
    return counts


def spread(ctx: Context) -> None:
    scale = ctx.scale
    counts = spread_counts(scale.spread_companies, scale.spread_interval_minutes)
    ratios = {source: report.max_min_ratio(c) for source, c in counts.items()}
    combined = [sum(c[m] for c in counts.values()) for m in range(scale.spread_interval_minutes)]
    earlier = spread_counts(1_000, 120)  # the scheduler issue's own case
    ctx.note(
        "scheduler",
        spread_companies=scale.spread_companies,
        spread_interval_minutes=scale.spread_interval_minutes,
        spread_per_source={
            s: {"min": min(c), "max": max(c), "ratio": round(ratios[s], 3)} for s, c in counts.items()
        },
        spread_all_sources_ratio=round(report.max_min_ratio(combined), 3),
        spread_1000_over_120_min_ratio=round(max(report.max_min_ratio(c) for c in earlier.values()), 3),
    )
    ctx.record("spread_max_min_ratio", max(ratios.values()))


async def memory(ctx: Context) -> None:
    scale = ctx.scale
    data = ctx.workdir / "scheduler"
    server = NatsServer(store_dir=data / "nats", sync_always=False, log_file=data / "nats.log")
    await asyncio.to_thread(server.start)
    port = free_port()
    child = Child(
        "scheduler",
        [sys.executable, "-m", "fmcsa_scheduler"],
        {
            "FMCSA_NATS_URL": server.url,
            "FMCSA_DATA_DIR": str(data),
            "FMCSA_SCHEDULER_ENABLED": "false",
            "FMCSA_SCHEDULER_HTTP_PORT": str(port),
            "FMCSA_SCHEDULER_STATUS_INTERVAL_S": "1",
            "FMCSA_LOG_LEVEL": "WARNING",
            "FMCSA_LOG_JSON": "true",
        },
        log_path=data / "scheduler.log",
    )
    try:
        # declare the stream first (the scheduler would too), so publishing can start at once after
        await publish(server.url, iter(()))
        child.start()
        assert child.process is not None
        pid = child.process.pid
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, within_s=60, process=child.process)
        await _companies_seen(server.url, 0, within_s=60)
        empty = rss_mb(pid)
        n = scale.scheduler_companies
        began = time.monotonic()
        events = (CompanyRegistered(dot=str(DOTS_FROM + i), registered_by="bench") for i in range(n))
        await publish(server.url, events)
        await _companies_seen(server.url, n, within_s=120)
        folded_s = time.monotonic() - began
        peak = empty
        for _ in range(10):
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.3)
    finally:
        child.stop(grace_s=5)
        server.stop()
    ctx.note(
        "scheduler",
        rss_companies=n,
        rss_empty_mb=round(empty, 1),
        rss_with_companies_mb=round(peak, 1),
        registrations_published_and_folded_s=round(folded_s, 1),
    )
    print(f"  scheduler resident: {empty:.0f} MB empty, {peak:.0f} MB with {n:,} companies x 3")
    ctx.record("scheduler_rss_mb", peak)


async def _companies_seen(url: str, count: int, *, within_s: float) -> None:
    """Wait until the scheduler's heartbeat (`scheduler.status` in fmcsa_state) counts `count` companies."""
    nc = await nats.connect(url, name="bench-scheduler")
    try:
        kv = await nc.jetstream().key_value(STATE_BUCKET)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                status = SchedulerStatus.decode((await kv.get(SCHEDULER_STATUS_KEY)).value)
                if status.companies == count and status.ready:
                    return
            except Exception:  # not written yet
                pass
            await asyncio.sleep(0.25)
        raise TimeoutError(f"the scheduler did not count {count} companies within {within_s:.0f} s")
    finally:
        await nc.drain()
