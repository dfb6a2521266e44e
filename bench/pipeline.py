"""The full sync against the rate-limited sandbox, its sequential baseline, and trigger-to-visible.

One `Launcher` (the code behind `./fmcsa up`) starts nats-server, the sandbox, the status projector,
the four source services and the gateway as processes on a scratch data folder (no scheduler: its
slots would add requests to the measured burst). Then:

1. `rate_utilization`, `sandbox_429s`: N companies are imported through the gateway and one
   `POST /api/sync/trigger` (every company, every source) starts 4N requests. The bench counts the
   outcomes on the bus; per source, achieved rate = upstream calls the sandbox admitted / (last outcome
   of that source - the trigger), over the allowed rate. The key is the lowest of the four sources
   (authority's QCMobile and DataHub calls share the sandbox's `authority` limit: its client splits the rate
   4 : 1, as a sync is four QCMobile calls and one DataHub call).
   `rate_utilization_loaded`, `sandbox_429s_loaded`: the same sync again at once, while two processes
   spin (bounded, killed at its end) so both cores stay busy: the clients' pace under CPU starvation.
2. `speedup_vs_sequential`: the seeds' way on the same sandbox: the same four clients (built from the
   same settings), one company at a time, one source after another, on a sample; its time per company
   x N, over the pipeline's time (trigger to last outcome). Each client runs as a process
   (`python -m fmcsa_source_<source>.sequential`): the bench imports no service.
3. `trigger_to_visible_p95_ms`: companies registered after the sync (so none is in flight) are
   triggered one at a time; the time from the POST until `GET /api/companies/{dot}/status` shows the
   outcome of all four requests, minus the sandbox latency on the critical path (authority's five calls).
4. `upstream_calls_per_carrier_cycle`, `carriers_kept_fresh_at_default_limits`, `delta_equals_full`: the
   steady-state cycle after the first full sync, on the same system (`bench.delta`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import nats

from bench import delta, report
from fmcsa_cli.launcher import Launcher, sandbox_wiring
from fmcsa_embedded import free_port
from fmcsa_runtime.tokens import Role, mint

if TYPE_CHECKING:
    from bench.run import Context

SOURCES = ("csa", "violations", "inspections", "authority")
CALLS_PER_SYNC = {"csa": 2, "violations": 1, "inspections": 1, "authority": 5}
"""Upstream calls per sync of one company (a small carrier: one page of violations, of filings)."""
SYNC_DOTS_FROM = 2_000_001
LOADED_DOTS_FROM = 3_000_001
TRIGGER_DOTS_FROM = 4_000_001


async def run(ctx: Context) -> None:
    scale = ctx.scale
    secret = secrets.token_urlsafe(48)
    rate = scale.rate_per_s
    env = {
        "FMCSA_JWT_SECRET": secret,
        "FMCSA_LOG_LEVEL": "WARNING",
        "FMCSA_LOG_JSON": "true",
        "FMCSA_GATEWAY_REQUEST_DEADLINE_S": "900",
        "FMCSA_GATEWAY_TRIGGER_PER_MINUTE": "100000",  # trigger-to-visible samples one after another
        # the later runs and the cycles trigger every one of their companies in one request (default 1,000)
        "FMCSA_GATEWAY_TRIGGER_MAX_DOTS": str(max(1_000, scale.companies)),
    }
    for source in SOURCES:
        upper = source.upper()
        env[f"FMCSA_SANDBOX_{upper}_RATE_PER_S"] = str(rate)
        env[f"FMCSA_SANDBOX_{upper}_LATENCY_MS"] = str(scale.latency_ms)
        env[f"FMCSA_{upper}_RATE_PER_S"] = str(rate)  # the client is configured at the upstream's limit
        env[f"FMCSA_{upper}_CONCURRENCY"] = str(scale.source_concurrency)
    env["FMCSA_AUTHORITY_RATE_PER_S"] = str(rate * 4 / 5)  # one sandbox limit for both of its hosts
    env["FMCSA_AUTHORITY_DATAHUB_RATE_PER_S"] = str(rate / 5)
    env |= delta.source_env(scale.gate_check_s)  # freshness checks, delta reads and change gates
    launcher = Launcher(
        data_dir=ctx.workdir / "pipeline",
        gateway_port=free_port(),
        services=["sandbox", "status", *SOURCES, "gateway"],
        extra_env=env,
    )
    started = time.monotonic()
    await asyncio.to_thread(launcher.start)
    ctx.note("pipeline", startup_s=round(time.monotonic() - started, 1))
    try:
        assert launcher.sandbox_url is not None
        assert launcher.nats is not None
        token = mint(secret, role=Role.ADMIN, subject="bench")
        async with (
            httpx.AsyncClient(
                base_url=launcher.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as api,
            httpx.AsyncClient(base_url=launcher.sandbox_url, timeout=30) as sandbox,
        ):
            pipeline_s = await _full_sync(ctx, api, sandbox, launcher.nats.url, launcher.bus_admin())
            expected_s = max(CALLS_PER_SYNC.values()) * ctx.scale.companies / ctx.scale.rate_per_s
            with busy_cores(expected_s * 2 + 60):
                await _full_sync(
                    ctx,
                    api,
                    sandbox,
                    launcher.nats.url,
                    launcher.bus_admin(),
                    suffix="_loaded",
                    first_dot=LOADED_DOTS_FROM,
                )
            await _sequential(ctx, launcher.sandbox_url, pipeline_s)
            await _trigger_to_visible(ctx, api)
            await delta.run(ctx, api, sandbox, launcher.nats.url, launcher.bus_admin())
    finally:
        await asyncio.to_thread(launcher.stop, grace_s=5)


async def _import(api: httpx.AsyncClient, dots: list[int], *, expect_total: int) -> None:
    answer = await api.post("/api/companies/import", json=[str(d) for d in dots])
    answer.raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        summary = await api.get("/api/sync/summary", params={"days": 1})
        if summary.status_code == 200 and summary.json()["companies"] >= expect_total:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the status view did not show {expect_total} companies within 60 s")


@contextlib.contextmanager
def busy_cores(seconds: float, *, processes: int = 2) -> Iterator[None]:
    """Two processes each spinning a core for at most `seconds`, killed on leaving the block."""
    spin = f"import time\nt = time.time() + {seconds:.1f}\nwhile time.time() < t:\n    pass\n"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(processes)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait(timeout=10)


async def _full_sync(
    ctx: Context,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    nats_url: str,
    admin: dict[str, str],
    *,
    suffix: str = "",
    first_dot: int = SYNC_DOTS_FROM,
) -> float:
    """One full sync of N fresh companies: the first run triggers every company (the issue's way), a
    later one (its own DOTs: no scheduler runs to release the first run's in-flight markers) its own.
    """
    scale = ctx.scale
    n = scale.companies
    dots = list(range(first_dot, first_dot + n))
    already = len(ctx.shared.setdefault("pipeline_companies", []))
    await _import(api, dots, expect_total=already + n)
    ctx.shared["pipeline_companies"].extend(dots)
    ctx.shared.setdefault("sync_dots", dots)  # the first run's: the steady-state cycle's (bench.delta)
    (await sandbox.post("/_sandbox/reset")).raise_for_status()

    seen: set[str] = set()
    last: dict[str, float] = {}
    failed: dict[str, int] = {}
    done = asyncio.Event()
    nc = await nats.connect(nats_url, name="bench-pipeline", **admin)

    async def on_outcome(msg: Any) -> None:
        parts = msg.subject.split(".")  # fmcsa.evt.<type>.<source>.<dot>
        event_id = (msg.headers or {}).get("Nats-Msg-Id", msg.subject)
        if event_id in seen:
            return
        seen.add(event_id)
        last[parts[3]] = time.monotonic()
        if parts[2] == "source_failed":
            failed[parts[3]] = failed.get(parts[3], 0) + 1
        if len(seen) >= len(SOURCES) * n:
            done.set()

    await nc.subscribe("fmcsa.evt.source_synced.>", cb=on_outcome)
    await nc.subscribe("fmcsa.evt.source_failed.>", cb=on_outcome)
    await nc.flush()
    try:
        t0 = time.monotonic()
        body = {"dot_numbers": [str(d) for d in dots]} if already else None
        answer = await api.post("/api/sync/trigger", json=body)
        answer.raise_for_status()
        started = len(answer.json()["started"])
        expected_s = max(CALLS_PER_SYNC.values()) * n / scale.rate_per_s
        await asyncio.wait_for(done.wait(), timeout=expected_s * 2 + 60)
        end = max(last.values())
    finally:
        await nc.drain()
    stats = (await sandbox.get("/_sandbox/stats")).json()["sources"]
    per_source = {}
    for source in SOURCES:
        admitted = int(stats[source]["admitted"])
        window = last[source] - t0
        per_source[source] = {
            "calls_admitted": admitted,
            "served_429": int(stats[source]["served_429"]),
            "max_per_s": stats[source].get("max_per_s"),
            "window_s": round(window, 2),
            "achieved_per_s": round(admitted / window, 2),
            "utilization": round(report.utilization(admitted, window, scale.rate_per_s), 4),
            "failed_outcomes": failed.get(source, 0),
        }
    pipeline_s = end - t0
    ctx.note(
        "pipeline",
        **{
            f"companies{suffix}": n,
            f"requests_started{suffix}": started,
            f"outcomes{suffix}": len(seen),
            f"pipeline_s{suffix}": round(pipeline_s, 2),
            f"per_source{suffix}": per_source,
            f"loadavg_at_start{suffix}": _loadavg(),
        },
    )
    label = " (both cores kept busy)" if suffix else ""
    print(f"  full sync of {n:,} companies x {len(SOURCES)} sources{label}: {pipeline_s:.1f} s", flush=True)
    ctx.record(f"rate_utilization{suffix}", min(p["utilization"] for p in per_source.values()))
    ctx.record(f"sandbox_429s{suffix}", float(sum(p["served_429"] for p in per_source.values())))
    return pipeline_s


def _loadavg() -> list[str]:
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return []


async def _sequential(ctx: Context, sandbox_url: str, pipeline_s: float) -> None:
    """The seeds' loop: the same clients, one company at a time, one source after another. Each source's
    client lives in its own process (`python -m fmcsa_source_<source>.sequential`: the bench imports no
    service), built and warmed up (one untimed fetch each: a fresh process's first call pays for lazy
    imports the seeds' long loop pays once) before the clock starts; the bench hands each company to
    them in turn and waits for each answer before the next.
    """
    rate = ctx.scale.rate_per_s
    env = {
        **os.environ,
        **sandbox_wiring(sandbox_url, {}),
        "FMCSA_DATA_DIR": str(ctx.workdir / "sequential"),
        "FMCSA_LOG_LEVEL": "WARNING",
        **{f"FMCSA_{source.upper()}_RATE_PER_S": str(rate) for source in SOURCES},
        "FMCSA_AUTHORITY_RATE_PER_S": str(rate * 4 / 5),
        "FMCSA_AUTHORITY_DATAHUB_RATE_PER_S": str(rate / 5),
    }
    sample = [str(SYNC_DOTS_FROM + i) for i in range(ctx.scale.sequential_sample)]
    clients = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"fmcsa_source_{source}.sequential",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for source in SOURCES
    ]
    failures = 0
    try:
        for client in clients:
            await _answer_of(client, expect=SEQUENTIAL_READY)
            await _fetch_in(client, sample[0])  # warm-up, untimed: a fresh process's first call costs more
        began = time.monotonic()
        for dot in sample:
            for client in clients:
                failures += (await _fetch_in(client, dot))["failed"]
        seconds = time.monotonic() - began
    finally:
        for client in clients:
            if client.stdin is not None:
                client.stdin.close()
        for client in clients:
            try:
                await asyncio.wait_for(client.wait(), 10)
            except TimeoutError:
                client.kill()
                await client.wait()
    estimate = report.sequential_estimate_s(seconds, len(sample), ctx.scale.companies)
    ctx.note(
        "pipeline",
        sequential_sample=len(sample),
        sequential_sample_s=round(seconds, 2),
        sequential_per_company_s=round(seconds / len(sample), 3),
        sequential_estimate_s=round(estimate, 1),
        sequential_failures=failures,
    )
    print(f"  sequential: {seconds / len(sample):.3f} s a company -> {estimate:.0f} s for all", flush=True)
    ctx.record("speedup_vs_sequential", estimate / pipeline_s)


SEQUENTIAL_READY = "ready"
"""What a `fmcsa_source_<source>.sequential` process prints once its client is built."""


async def _fetch_in(client: asyncio.subprocess.Process, dot: str) -> dict[str, Any]:
    """Have a sequential client process fetch `dot`; its answer."""
    assert client.stdin is not None
    client.stdin.write(f"{dot}\n".encode())
    await client.stdin.drain()
    answer: dict[str, Any] = json.loads(await _answer_of(client))
    return answer


async def _answer_of(client: asyncio.subprocess.Process, *, expect: str | None = None) -> str:
    """The client process's next line (a JSON answer, or `expect`); it must come within a minute."""
    assert client.stdout is not None
    line = (await asyncio.wait_for(client.stdout.readline(), 60)).decode().strip()
    if not line or (expect is not None and line != expect):
        raise RuntimeError(f"a sequential client process answered {line!r} (exit code {client.returncode})")
    return line


async def _trigger_to_visible(ctx: Context, api: httpx.AsyncClient) -> None:
    scale = ctx.scale
    dots = [TRIGGER_DOTS_FROM + i for i in range(scale.trigger_samples)]
    await _import(api, dots, expect_total=len(ctx.shared.get("pipeline_companies", [])) + len(dots))
    critical_ms = CALLS_PER_SYNC["authority"] * scale.latency_ms  # authority's calls, one after another
    raw: list[float] = []
    for dot in dots:
        began = time.monotonic()
        answer = await api.post("/api/sync/trigger", json={"dot_numbers": [str(dot)]})
        answer.raise_for_status()
        wanted = {s["source"]: s["request_id"] for s in answer.json()["started"]}
        deadline = began + 30
        while time.monotonic() < deadline:
            status = (await api.get(f"/api/companies/{dot}/status")).json()
            sources = status.get("sources", {})
            if all(
                sources.get(src, {}).get("last_request_id") == rid
                and sources.get(src, {}).get("state") != "requested"
                for src, rid in wanted.items()
            ):
                break
            await asyncio.sleep(0.01)
        else:
            raise TimeoutError(f"company {dot}'s outcomes were not visible within 30 s")
        raw.append((time.monotonic() - began) * 1000)
    net = [max(0.0, r - critical_ms) for r in raw]
    ctx.note(
        "pipeline",
        trigger_samples=len(raw),
        trigger_raw_p50_ms=round(report.percentile(raw, 0.5), 1),
        trigger_raw_p95_ms=round(report.percentile(raw, 0.95), 1),
        trigger_sandbox_latency_subtracted_ms=critical_ms,
        trigger_net_p50_ms=round(report.percentile(net, 0.5), 1),
    )
    ctx.record("trigger_to_visible_p95_ms", report.percentile(net, 0.95))
