"""The event stream, its replay, and the gateway reading the projection that replay built.

`run_events` (keys `fold_ratio_vs_raw_read`, `rebuild_1m_seconds`):
1. a private nats-server (its own scratch store; `sync_interval` left at the server default, since
   only reading is measured) gets E events for C companies: each company's `CompanyRegistered`, then
   rounds of three `SyncRequested` and their outcomes (about 93% `SourceSynced`, 7% `SourceFailed`,
   with a `CarrierDataChanged` before 5% of the successes), published in windows of 500 companies
   as the scheduler and the sources would, as plain NATS publishes (JetStream stores them);
2. the baseline: `bench.rawread` (its own process) reads the stream with a bare ordered consumer,
   once decoding each message, once only counting it;
3. `python -m fmcsa_status.rebuild` (the command behind `./fmcsa rebuild-status`) folds it into a
   new SQLite status store. Fold ratio = its events/s over the raw read-and-decode events/s; the
   rebuild's time for 1,000,000 events = its start-up + its fold time x 1,000,000 / E.

`run_gateway` (keys `gateway_p99_ms`, `gateway_rps_ratio_vs_bare`) starts the gateway on that store
(C companies: 100,000 in the full run, 10,000 in the quick one), a bare Litestar endpoint served the
same way (`bench.bare_app`), and `bench.loadgen` as a separate process: closed-loop throughput of each,
then the status GET at a fixed 500 requests/s (latency counted from each request's due time).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
import nats

from bench import report
from fmcsa_embedded import Child, NatsServer, free_port, wait_for_port
from fmcsa_events.decoder import encode
from fmcsa_events.envelope import envelope_for
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CHANGE_KINDS_BY_SOURCE,
    CarrierDataChanged,
    CompanyRegistered,
    Counts,
    ErrorKind,
    Event,
    SourceFailed,
    SourceSynced,
    SyncRequested,
    Trigger,
)
from fmcsa_events.subjects import subject_for
from fmcsa_events.topology import EVENTS_STREAM, declare
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_runtime.tokens import Role, mint

if TYPE_CHECKING:
    from bench.run import Context

DOTS_FROM = 1_000_000
WINDOW = 500
CHANGE_SHARE = float(os.environ.get("BENCH_CHANGE_SHARE", "0.05"))
"""Share of successes preceded by a `CarrierDataChanged` (BENCH_CHANGE_SHARE; 0 leaves them out)."""
BASE = datetime(2026, 1, 5, tzinfo=UTC)
SUMMARY: dict[SourceKey, dict[str, Any]] = {
    SourceKey.CSA: {"basics_public": 5, "alerts": 1, "highest_percentile": 71, "run_month": "2025-12"},
    SourceKey.VIOLATIONS: {"rows": 14, "oos": 2, "latest_inspection": "2025-11-20"},
    SourceKey.INSPECTIONS: {"us_inspections": 31, "oos_rate": 9.7, "crashes": 1, "status": "ACTIVE"},
    SourceKey.AUTHORITY: {
        "authority": {"common": "active", "contract": "none", "broker": "none"},
        "dockets": ["MC1034412"],
        "oos_order": None,
        "insurance": {
            "bipd_required": 750000,
            "bipd_on_file": 1000000,
            "cargo_on_file": 0,
            "bond_on_file": 0,
            "filings": 2,
            "next_cancellation": None,
        },
    },
}


def generate(count: int, companies: int, *, seed: int = 11) -> Iterator[Event]:
    """`count` events for `companies` companies (DOTs from 1,000,000): registrations first, then rounds
    of requests and outcomes in windows of 500 companies. Deterministic for a seed.
    """
    rng = random.Random(seed)
    made = 0
    for i in range(companies):
        if made >= count:
            return
        yield CompanyRegistered(dot=str(DOTS_FROM + i), name=f"Carrier {i}", registered_by="bench")
        made += 1
    round_number = 0
    while True:
        slot = BASE + timedelta(hours=6 * round_number)
        for first in range(0, companies, WINDOW):
            window = range(first, min(first + WINDOW, companies))
            requests: list[SyncRequested] = []
            for i in window:
                for source in SourceKey:
                    at = slot + timedelta(seconds=(i * 7 + hash(source) % 60) % 21_600)
                    requests.append(
                        SyncRequested(
                            request_id=UUID(int=rng.getrandbits(128), version=4),
                            dot=str(DOTS_FROM + i),
                            source=source,
                            trigger=Trigger.SCHEDULED,
                            requested_by="scheduler",
                            requested_at=at,
                            deadline=at + timedelta(minutes=30),
                            slot=slot,
                        )
                    )
            for request in requests:
                if made >= count:
                    return
                yield request
                made += 1
            for request in requests:
                for event in _outcome(request, rng):
                    if made >= count:
                        return
                    yield event
                    made += 1
        round_number += 1


def _outcome(request: SyncRequested, rng: random.Random) -> list[Event]:
    started = request.requested_at + timedelta(seconds=rng.uniform(0.05, 3))
    finished = started + timedelta(milliseconds=rng.uniform(200, 2500))
    draw = rng.random()
    if draw < 0.07:
        kind = rng.choice([ErrorKind.UPSTREAM_ERROR, ErrorKind.TIMEOUT, ErrorKind.NOT_FOUND])
        return [
            SourceFailed(
                request_id=request.request_id,
                dot=request.dot,
                source=request.source,
                kind=kind,
                retryable=kind != ErrorKind.NOT_FOUND,
                attempts=rng.randint(1, 5),
                message=f"{kind.value} from the upstream",
                detail="HTTP 503 after 3 attempts",
                started_at=started,
                finished_at=finished,
            )
        ]
    events: list[Event] = []
    if draw > 1.0 - CHANGE_SHARE:
        events.append(
            CarrierDataChanged(
                request_id=request.request_id,
                dot=request.dot,
                source=request.source,
                kind=CHANGE_KINDS_BY_SOURCE[request.source][0],
                subject="unsafe_driving" if request.source == SourceKey.CSA else "count",
                before=rng.randint(0, 90),
                after=rng.randint(0, 90),
                observed_at=finished,
            )
        )
    fetched = rng.randint(1, 40)
    events.append(
        SourceSynced(
            request_id=request.request_id,
            dot=request.dot,
            source=request.source,
            counts=Counts(fetched=fetched, unchanged=fetched),
            attempts=1,
            started_at=started,
            finished_at=finished,
            retrieved_at=finished,
            upstream_as_of=datetime(2025, 12, 19, tzinfo=UTC),
            summary=SUMMARY[request.source],
        )
    )
    return events


async def publish(url: str, events: Iterator[Event]) -> int:
    """Publish as plain NATS messages on the stream's subjects (JetStream stores them; no PubAck per
    message, a flush every 2,000), then return the stream's last sequence for the caller to check:
    four times faster than awaiting PubAcks, and only the reading is measured.
    """
    nc = await nats.connect(url, name="bench-generate", pending_size=64 * 1024**2)
    try:
        js = nc.jetstream()
        await declare(js, ServiceSettings().topology())
        occurred = datetime.now(UTC)
        for number, event in enumerate(events, 1):
            envelope = envelope_for(event, producer="bench", occurred_at=occurred)
            await nc.publish(subject_for(event), encode(event), headers=envelope.to_headers())
            if number % 2_000 == 0:
                await nc.flush(timeout=60)
        await nc.flush(timeout=60)
        last = 0
        for _ in range(100):  # the server may still be writing the last messages
            info = await js.stream_info(EVENTS_STREAM)
            if info.state.last_seq == last:
                break
            last = int(info.state.last_seq)
            await asyncio.sleep(0.1)
        return last
    finally:
        await nc.drain()


async def _python(*args: str, env: dict[str, str] | None = None, limit_s: float = 900) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=limit_s)
    except BaseException:  # a timeout, or the stage's budget cancelled us: leave no process behind
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited {process.returncode}: {err.decode()[-800:]}")
    return out.decode()


async def run_events(ctx: Context) -> None:
    scale = ctx.scale
    data = ctx.workdir / "events"
    nats_server = NatsServer(store_dir=data / "nats", sync_always=False, log_file=data / "nats.log")
    await asyncio.to_thread(nats_server.start)
    ctx.shared["events_nats"] = nats_server  # the gateway stage reads the same store, then stops it
    ctx.shared["events_dir"] = data
    began = time.monotonic()
    last_seq = await publish(nats_server.url, generate(scale.events, scale.event_companies))
    generate_s = time.monotonic() - began
    if last_seq != scale.events:
        raise RuntimeError(f"the stream holds {last_seq} events, not {scale.events}")
    print(
        f"  generated {last_seq:,} events for {scale.event_companies:,} companies in {generate_s:.0f} s",
        flush=True,
    )

    raw = json.loads(await _python("-m", "bench.rawread", nats_server.url, str(last_seq), "--decode"))
    print(f"  raw ordered read and decode: {raw['rate']:,.0f} events/s", flush=True)
    bare: dict[str, Any] | None = None
    if os.environ.get("BENCH_READ_WITHOUT_DECODE"):  # for the record: the read alone, not decoded
        bare = json.loads(await _python("-m", "bench.rawread", nats_server.url, str(last_seq)))
        print(f"  raw ordered read without decoding: {bare['rate']:,.0f} events/s", flush=True)

    env = {
        "FMCSA_NATS_URL": nats_server.url,
        "FMCSA_DATA_DIR": str(data),
        "FMCSA_LOG_LEVEL": "WARNING",
        "FMCSA_LOG_JSON": "true",
    }
    profile = data / "rebuild.prof" if os.environ.get("BENCH_PROFILE") else None
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    began = time.monotonic()
    out = await _python(*profiler, "-m", "fmcsa_status.rebuild", env=env)
    wall_s = time.monotonic() - began
    if profile is not None:
        ctx.note("events", rebuild_profile_top=top_functions(profile), rebuild_profiled=True)
    match = re.search(r"\(([\d,]+) events in ([\d.]+)s, ([\d,]+) events/s", out)
    if match is None:
        raise RuntimeError(f"unexpected rebuild output: {out[-300:]}")
    events = int(match.group(1).replace(",", ""))
    fold_s = float(match.group(2))
    fold_rate = events / fold_s
    ctx.note(
        "events",
        events=last_seq,
        companies=scale.event_companies,
        generate_s=round(generate_s, 1),
        raw_read_decode=raw,
        raw_read_bare=bare,
        rebuild_wall_s=round(wall_s, 1),
        rebuild_fold_s=fold_s,
        rebuild_events_per_s=round(fold_rate),
    )
    if bare is not None:
        ctx.note("events", fold_ratio_vs_read_without_decode=round(fold_rate / bare["rate"], 3))
    print(
        f"  rebuild: {events:,} events folded in {fold_s:.1f} s ({fold_rate:,.0f}/s), {wall_s:.1f} s in all"
    )
    ctx.shared["projection_ready"] = True
    ctx.record("fold_ratio_vs_raw_read", fold_rate / raw["rate"])
    ctx.record(
        "rebuild_1m_seconds",
        report.scaled_seconds(fixed_s=max(0.0, wall_s - fold_s), per_event_s=fold_s, events=events),
    )


def top_functions(path: Path, count: int = 25) -> list[str]:
    """The functions that took the most time of their own in a cProfile file, one line each."""
    import pstats

    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]  # set by pstats, not in its stubs
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:count]  # type: ignore[attr-defined]
    lines = []
    for (filename, line, name), (_, calls, own, cumulative, _) in rows:
        where = "/".join(Path(filename).parts[-2:])
        lines.append(
            f"{own / total:6.1%} own {own:7.2f} s cum {cumulative:7.2f} s {calls:>9} x {where}:{line}({name})"
        )
    return lines


async def run_gateway(ctx: Context) -> None:
    scale = ctx.scale
    nats_server: NatsServer | None = ctx.shared.get("events_nats")
    if nats_server is None or not ctx.shared.get("projection_ready"):
        raise RuntimeError("no projection to serve (the events stage did not run or did not finish)")
    data = ctx.shared["events_dir"]
    secret = secrets.token_urlsafe(48)
    port, bare_port = free_port(), free_port()
    gateway = Child(
        "gateway",
        [sys.executable, "-m", "fmcsa_gateway"],
        {
            "FMCSA_NATS_URL": nats_server.url,
            "FMCSA_DATA_DIR": str(data),
            "FMCSA_GATEWAY_PORT": str(port),
            "FMCSA_JWT_SECRET": secret,
            "FMCSA_LOG_LEVEL": "WARNING",
            "FMCSA_LOG_JSON": "true",
        },
        log_path=data / "gateway.log",
    ).start()
    bare = Child(
        "bare", [sys.executable, "-m", "bench.bare_app", str(bare_port)], {}, log_path=data / "bare.log"
    ).start()
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, within_s=60, process=gateway.process)
        await asyncio.to_thread(wait_for_port, "127.0.0.1", bare_port, within_s=60, process=bare.process)
        url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + 60
            while (await client.get(f"{url}/ready")).status_code != 200:
                if time.monotonic() > deadline:
                    raise TimeoutError("the gateway did not become ready within 60 s")
                await asyncio.sleep(0.2)
        token = mint(secret, role=Role.VIEWER, subject="bench")
        path = "/api/companies/{dot}/status"
        dots = f"{DOTS_FROM}:{scale.event_companies}"
        seconds = str(scale.load_seconds)

        async def load(target: str, *args: str) -> dict[str, Any]:
            out = await _python(
                "-m", "bench.loadgen", "--url", target, "--path", path, "--dots", dots, "--duration", seconds,
                *args, env={"BENCH_TOKEN": token}, limit_s=scale.load_seconds * 4 + 60,
            )  # fmt: skip
            result: dict[str, Any] = json.loads(out)
            return result

        open_loop = await load(url, "--mode", "open", "--rate", str(scale.gateway_rate))
        bare_closed = await load(bare_url, "--mode", "closed", "--concurrency", "16")
        status_closed = await load(url, "--mode", "closed", "--concurrency", "16")
    finally:
        for child in (gateway, bare):
            child.stop(grace_s=5)
        nats_server.stop()
    ctx.note(
        "gateway",
        companies=scale.event_companies,
        open_loop_500=open_loop,
        closed_bare=bare_closed,
        closed_status=status_closed,
    )
    if open_loop["errors"] or status_closed["errors"]:
        raise RuntimeError(f"status GETs failed: {open_loop['statuses']} / {status_closed['statuses']}")
    print(
        f"  status GET at {scale.gateway_rate:.0f}/s: p50 {open_loop['p50_ms']:.1f} ms, "
        f"p99 {open_loop['p99_ms']:.1f} ms; closed loop: {status_closed['rps']:,.0f}/s "
        f"vs bare {bare_closed['rps']:,.0f}/s"
    )
    ctx.record("gateway_p99_ms", float(open_loop["p99_ms"]))
    ctx.record("gateway_rps_ratio_vs_bare", status_closed["rps"] / bare_closed["rps"])
