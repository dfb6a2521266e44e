"""A rebuild from a snapshot (issue 26): key `rebuild_from_snapshot_seconds`, the time to a ready
store with `snapshot_events` events in the log and a snapshot at `snapshot_at` (full run: 10,000,000
events for 1,000,000 companies, the snapshot at 9,000,000).

1. a private nats-server gets the first `snapshot_at` events of the stream `bench.projection.generate`
   makes for `snapshot_companies` companies (published as the events stage does);
2. `python -m fmcsa_status.rebuild --from-scratch` folds them into a new SQLite store, and
   `python -m fmcsa_status.snapshot` (the command behind `./fmcsa snapshot-status`) saves its snapshot
   into the bus;
3. the rest of the stream is published;
4. measured: `python -m fmcsa_status.rebuild` (the command behind `./fmcsa rebuild-status`) as a
   process, wall time from its start to its exit: it loads the snapshot into a new store, folds the
   events after it and swaps the store in. That wall time is the key;
5. beside it, in the same run and on the same log: `python -m fmcsa_status.rebuild --from-scratch`
   (detail `rebuild_from_scratch_s`).
Every process runs a service's own command; the bench imports no service.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench import report
from bench.projection import _python, generate, publish
from fmcsa_embedded import NatsServer

if TYPE_CHECKING:
    from bench.run import Context

_SAVED = re.compile(r"saved (\S+) at position (\d+) \(([\d,]+) rows, ([\d,]+) bytes")
_FROM = re.compile(
    r"\(([\d,]+) events in ([\d.]+)s.*\), from (snapshot (\S+) at (\d+), loaded in ([\d.]+)s|scratch)"
)


async def run(ctx: Context) -> None:
    data = ctx.workdir / "snapshot"
    server = NatsServer(store_dir=data / "nats", sync_always=False, log_file=data / "nats.log")
    await asyncio.to_thread(server.start)
    try:
        await _run(ctx, server, data)
    finally:
        server.stop()


async def _run(ctx: Context, server: NatsServer, data: Path) -> None:
    scale = ctx.scale
    env = {
        "FMCSA_NATS_URL": server.url,
        "FMCSA_DATA_DIR": str(data),
        "FMCSA_LOG_LEVEL": "WARNING",
        "FMCSA_LOG_JSON": "true",
    }
    limit = 6 * 3600.0  # the stage's budget bounds it first
    events = generate(scale.snapshot_events, scale.snapshot_companies)
    began = time.monotonic()
    at = await publish(server.url, itertools.islice(events, scale.snapshot_at))
    if at != scale.snapshot_at:
        raise RuntimeError(f"the stream holds {at} events, not {scale.snapshot_at}")
    await _python("-m", "fmcsa_status.rebuild", "--from-scratch", env=env, limit_s=limit)
    began_save = time.monotonic()
    saved = _SAVED.search(await _python("-m", "fmcsa_status.snapshot", env=env, limit_s=limit))
    save_s = time.monotonic() - began_save
    if saved is None or int(saved.group(2)) != at:
        raise RuntimeError("the snapshot was not saved at the position of the store")
    last = await publish(server.url, events)
    if last != scale.snapshot_events:
        raise RuntimeError(f"the stream holds {last} events, not {scale.snapshot_events}")
    prepare_s = time.monotonic() - began
    size = int(saved.group(4).replace(",", ""))
    print(
        f"  {last:,} events for {scale.snapshot_companies:,} companies, a snapshot at {at:,} "
        f"({size:,} bytes, saved in {save_s:.1f} s); ready in {prepare_s:.0f} s",
        flush=True,
    )

    began = time.monotonic()
    out = await _python("-m", "fmcsa_status.rebuild", env=env, limit_s=limit)
    from_snapshot_s = time.monotonic() - began
    tail = _FROM.search(out)
    if tail is None or tail.group(4) != saved.group(1):
        raise RuntimeError(f"the rebuild did not start from the snapshot: {out[-300:]}")
    began = time.monotonic()
    out = await _python("-m", "fmcsa_status.rebuild", "--from-scratch", env=env, limit_s=limit)
    from_scratch_s = time.monotonic() - began
    scratch = _FROM.search(out)
    if scratch is None or scratch.group(3) != "scratch":
        raise RuntimeError(f"unexpected rebuild output: {out[-300:]}")
    print(
        f"  rebuild from the snapshot: {from_snapshot_s:.1f} s (load {float(tail.group(6)):.1f} s, then "
        f"{int(tail.group(1).replace(',', '')):,} events); from scratch: {from_scratch_s:.1f} s",
        flush=True,
    )
    ctx.note(
        "snapshot",
        events=last,
        companies=scale.snapshot_companies,
        snapshot_at=at,
        snapshot_rows=int(saved.group(3).replace(",", "")),
        snapshot_bytes=size,
        snapshot_save_s=round(save_s, 2),
        snapshot_load_s=float(tail.group(6)),
        tail_events=int(tail.group(1).replace(",", "")),
        rebuild_from_scratch_s=round(from_scratch_s, 2),
        scratch_over_snapshot=round(from_scratch_s / from_snapshot_s, 2),
    )
    ctx.record("rebuild_from_snapshot_seconds", from_snapshot_s)
    # issue 26: the from-scratch rebuild of the same log, scaled to 10,000,000 events as the events
    # stage scales rebuild_1m_seconds (the full run: E = 10,000,000, nothing scaled)
    fold_s, folded = float(scratch.group(2)), int(scratch.group(1).replace(",", ""))
    ctx.record(
        "rebuild_10m_seconds",
        report.scaled_seconds(
            fixed_s=max(0.0, from_scratch_s - fold_s),
            per_event_s=fold_s,
            events=folded,
            target=10 * report.MILLION,
        ),
    )
