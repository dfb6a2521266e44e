"""The steady-state cycle of issue 24, on the pipeline stage's running system (no second start-up).

After the pipeline's first full sync of N companies (`SYNC_DOTS_FROM`...):

1. `upstream_calls_per_carrier_cycle`: the sandbox changes 5% of them (a partial bump: those carriers
   one data version ahead, so their rows' `:updated_at` and the datasets' `rowsUpdatedAt` move) and the
   bench triggers every company and source once more; the calls the sandbox admitted over N, per source
   and in total (the key).
2. a reconciliation cycle: every company triggered once more (the violations source reads in full every
   carrier that has seen a new publication since its last full read, which ages rows out).
3. `delta_equals_full`: the violations store (its SQLite file, current rows) and the projection (each
   company's `violations` summary on the status API) against a full refetch the bench makes itself from
   the sandbox (batched `dot_number IN (...)` reads of every row): rows in one and not the other, plus
   companies whose summary totals differ. 0 is the goal.
4. `carriers_kept_fresh_at_default_limits`: each upstream limit's default rate x its publication cadence
   over the calls a carrier needs per publication (`report.kept_fresh`), measured: the first full
   sync's calls per carrier for the per-carrier APIs, the reconciliation cycle's for violations (a full
   read per publication; deltas in between are batched). Authority with its daily difference gate: a
   carrier is fetched once a day only when a day's difference lists it (the share the cycle fetched: the
   bench's bump is one daily publication changing 5%) or when its full refresh is due (one day in
   `FULL_REFRESH_DAYS`), four QCMobile calls and one DataHub call a fetch; the gate's own DataHub calls
   (metadata every check, the differences read once per publication) are a fixed daily cost
   (`gate_calls_per_day`). The key is the binding (lowest) limit.

In-flight markers are released by the scheduler, which this system does not run: the bench deletes
them after each cycle, once every outcome has arrived.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import nats

from bench import report

if TYPE_CHECKING:
    from bench.run import Context

SOURCES = ("csa", "violations", "inspections", "authority")
CHANGED_SHARE = 0.05
DEFAULT_RATE_PER_S = {
    "csa": 2.0,
    "violations": 2.0,
    "inspections": 1.0,
    "authority": 2.0,
    "authority.datahub": 2.0,
    "inspections.datahub": 2.0,
}
"""Each upstream limit's default (the sources' `rate_per_s` settings; a unit test keeps them equal)."""
FRESHNESS_TTL_S = 2.0
GATE_CHECK_S = 10.0
"""The gates' check period in the bench (default 300 s), so the cycle right after the bump sees it; the
smoke scale's is shorter (`Scale.gate_check_s`)."""
FULL_REFRESH_DAYS = 7.0
"""The authority gate's default safety net (`FMCSA_AUTHORITY_FULL_REFRESH_S`, 7 days)."""
DEFAULT_GATE_CHECK_S = 300.0
"""`FMCSA_AUTHORITY_DAILY_DIFFERENCE_CHECK_S`'s default; a unit test keeps them equal."""
DIFFERENCE_DATASETS = 4
INSPECTIONS_GATE_FILES = 2
"""The inspections gate's DataHub files (Vehicle Inspection File, Crash File); checked as authority's."""
SOURCE_ENV = {
    # the launcher turns these off against the sandbox (a demo syncs right after a bump); the bench wants
    # them as deployed: delta reads at their default window, the dataset's metadata trusted for 2 s (not
    # the default 300 s, so the cycle right after the bench's bump sees it)
    "FMCSA_VIOLATIONS_FRESHNESS_CHECK_S": str(FRESHNESS_TTL_S),
    "FMCSA_VIOLATIONS_DELTA_WINDOW_S": "0.1",
    "FMCSA_CSA_PUBLICATION_CHECK_S": str(FRESHNESS_TTL_S),
    # inspections and authority at their default publication period (a day): the cycle right after the
    # first full sync is within it
    "FMCSA_INSPECTIONS_PUBLICATION_PERIOD_S": "86400",
    "FMCSA_AUTHORITY_PUBLICATION_PERIOD_S": "86400",
    # authority's daily difference gate as deployed (the launcher turns it off), checking every 10 s
    "FMCSA_AUTHORITY_DAILY_DIFFERENCE": "true",
    "FMCSA_AUTHORITY_DAILY_DIFFERENCE_CHECK_S": str(GATE_CHECK_S),
    # and the inspections change gate (DataHub's inspection and crash files), likewise
    "FMCSA_INSPECTIONS_CHANGE_GATE": "true",
    "FMCSA_INSPECTIONS_CHANGE_GATE_CHECK_S": str(GATE_CHECK_S),
}


def source_env(gate_check_s: float) -> dict[str, str]:
    """`SOURCE_ENV` with both gates checking every `gate_check_s`."""
    checks = ("FMCSA_AUTHORITY_DAILY_DIFFERENCE_CHECK_S", "FMCSA_INSPECTIONS_CHANGE_GATE_CHECK_S")
    return SOURCE_ENV | dict.fromkeys(checks, str(gate_check_s))


INFLIGHT_BUCKET = "fmcsa_inflight"
IN_BATCH = 100  # DOTs per refetch query (docs/upstreams.md 4.2: about 100)


async def run(
    ctx: Context, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, nats_url: str, admin: dict[str, str]
) -> None:
    n = ctx.scale.companies
    dots = [str(d) for d in ctx.shared["sync_dots"]]
    first = ctx.details["pipeline"]["per_source"]
    changed = dots[:: round(1 / CHANGED_SHARE)]
    await _release(nats_url, admin)
    (await sandbox.post("/_sandbox/bump", json={"dots": [int(d) for d in changed]})).raise_for_status()
    # past what the sources cached of the metadata before the bump, and past the authority gate's next
    # background check (it runs `gate_check_s` after the previous one ended)
    await asyncio.sleep(max(FRESHNESS_TTL_S, 2 * ctx.scale.gate_check_s) + 1)
    cycle = await _cycle(ctx, api, sandbox, nats_url, admin, dots)
    per_carrier = {s: round(cycle["admitted"][s] / n, 4) for s in SOURCES}
    total = round(sum(per_carrier.values()), 4)
    reconcile = await _cycle(ctx, api, sandbox, nats_url, admin, dots)
    store_diff, projection_diff = await _compare(ctx, api, sandbox, dots)

    calls = {"csa": first["csa"]["calls_admitted"] / n}
    calls["violations"] = reconcile["admitted"]["violations"] / n

    def listed(source: str) -> float:  # the share of carriers the cycle fetched (the others unchanged)
        return (n - cycle["unchanged"][source] - cycle["failed"][source]) / n

    # authority's gate: the share of carriers a day's difference lists (the cycle's fetches) plus the full
    # refresh's share, each fetch four QCMobile calls and one DataHub call; the gate's own calls are fixed.
    # Without the gate (its cadence instead), every carrier is fetched once a day.
    fetched_share = listed("authority")
    per_fetch = first["authority"]["calls_admitted"] / n  # 5: four QCMobile, one DataHub
    gated = SOURCE_ENV["FMCSA_AUTHORITY_DAILY_DIFFERENCE"] == "true"
    refetched = report.gated_calls(fetched_share, FULL_REFRESH_DAYS, 1.0) if gated else 1.0
    calls["authority"] = refetched * per_fetch * 4 / 5
    calls["authority.datahub"] = refetched * per_fetch / 5
    gate_calls_per_day = report.gate_fixed_calls(DIFFERENCE_DATASETS, DEFAULT_GATE_CHECK_S)
    # inspections' gate likewise: one SaferWebAPI call per fetch (the sandbox counts the gate's DataHub
    # calls with the source's, so the first sync's count is not the per-fetch one); DataHub: the gate's own
    inspections_gated = SOURCE_ENV["FMCSA_INSPECTIONS_CHANGE_GATE"] == "true"
    inspections_share = listed("inspections")
    calls["inspections"] = (
        report.gated_calls(inspections_share, FULL_REFRESH_DAYS, 1.0) if inspections_gated else 1.0
    )
    # (its DataHub calls per carrier are none: only the gate's fixed cost, which `fixed` takes out)
    calls["inspections.datahub"] = 0.0
    inspections_gate_calls = report.gate_fixed_calls(INSPECTIONS_GATE_FILES, DEFAULT_GATE_CHECK_S)
    fixed = {
        "authority.datahub": gate_calls_per_day if gated else 0.0,
        "inspections.datahub": inspections_gate_calls if inspections_gated else 0.0,
    }
    fresh = report.kept_fresh(calls, DEFAULT_RATE_PER_S, report.CADENCE_S, fixed)
    limit, kept = report.binding(fresh)
    ctx.note(
        "pipeline",
        delta_changed_carriers=len(changed),
        delta_cycle_calls=cycle["admitted"],
        delta_cycle_calls_per_carrier=per_carrier,
        delta_cycle_checked_unchanged=cycle["unchanged"],
        delta_cycle_failed=cycle["failed"],
        reconcile_cycle_calls=reconcile["admitted"],
        reconcile_cycle_checked_unchanged=reconcile["unchanged"],
        delta_equals_full_store_rows=store_diff,
        delta_equals_full_projection_carriers=projection_diff,
        calls_per_carrier_per_publication={k: round(v, 4) for k, v in calls.items()},
        authority_fetched_share_in_cycle=round(fetched_share, 4),
        authority_gate_calls_per_day=gate_calls_per_day,
        inspections_fetched_share_in_cycle=round(inspections_share, 4),
        inspections_gate_calls_per_day=inspections_gate_calls,
        kept_fresh_per_limit={k: round(v) if math.isfinite(v) else None for k, v in fresh.items()},
        kept_fresh_binding=limit,
    )
    print(f"  cycle with {len(changed)} of {n} changed: calls per carrier {per_carrier}", flush=True)
    ctx.record("upstream_calls_per_carrier_cycle", total)
    ctx.record("carriers_kept_fresh_at_default_limits", kept)
    ctx.record("delta_equals_full", float(store_diff + projection_diff))


async def _release(nats_url: str, admin: dict[str, str]) -> None:
    """Delete every in-flight marker (every outcome has arrived; no scheduler runs to release them)."""
    nc = await nats.connect(nats_url, name="bench-delta", **admin)
    try:
        kv = await nc.jetstream().key_value(INFLIGHT_BUCKET)
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return
        for key in keys:
            await kv.purge(key)
    finally:
        await nc.drain()


async def _cycle(
    ctx: Context,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    nats_url: str,
    admin: dict[str, str],
    dots: list[str],
) -> dict[str, Any]:
    """Trigger every (company, source) of `dots` once and wait for every outcome; the calls the sandbox
    admitted meanwhile per source, and the outcomes that were `checked_unchanged` or failed.
    """
    (await sandbox.post("/_sandbox/reset")).raise_for_status()
    seen: set[str] = set()
    unchanged = dict.fromkeys(SOURCES, 0)
    failed = dict.fromkeys(SOURCES, 0)
    done = asyncio.Event()
    nc = await nats.connect(nats_url, name="bench-delta", **admin)

    async def on_outcome(msg: Any) -> None:
        parts = msg.subject.split(".")  # fmcsa.evt.<type>.<source>.<dot>
        event_id = (msg.headers or {}).get("Nats-Msg-Id", msg.subject)
        if event_id in seen:
            return
        seen.add(event_id)
        if parts[2] == "source_failed":
            failed[parts[3]] += 1
        elif b'"checked_unchanged":true' in msg.data.replace(b" ", b""):
            unchanged[parts[3]] += 1
        if len(seen) >= len(SOURCES) * len(dots):
            done.set()

    await nc.subscribe("fmcsa.evt.source_synced.>", cb=on_outcome)
    await nc.subscribe("fmcsa.evt.source_failed.>", cb=on_outcome)
    await nc.flush()
    try:
        answer = await api.post("/api/sync/trigger", json={"dot_numbers": dots})
        answer.raise_for_status()
        expected_s = 5 * len(dots) / ctx.scale.rate_per_s
        await asyncio.wait_for(done.wait(), timeout=expected_s * 2 + 60)
    finally:
        await nc.drain()
    await _release(nats_url, admin)
    stats = (await sandbox.get("/_sandbox/stats")).json()["sources"]
    return {
        "admitted": {s: int(stats[s]["admitted"]) for s in SOURCES},
        "unchanged": unchanged,
        "failed": failed,
    }


async def _compare(
    ctx: Context, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, dots: list[str]
) -> tuple[int, int]:
    """Rows differing between the violations store and a full refetch; companies whose projected
    violations summary (total, out-of-service, inspections) differs from the refetch's.
    """
    upstream: list[tuple[Any, ...]] = []
    for start in range(0, len(dots), IN_BATCH):
        batch = dots[start : start + IN_BATCH]
        where = "dot_number IN (" + ", ".join(f"'{d}'" for d in batch) + ")"
        offset = 0
        while True:
            answer = await sandbox.get(
                "/resource/8mt8-2mdr.json",
                params={"$where": where, "$order": ":id", "$limit": "50000", "$offset": str(offset)},
            )
            if answer.status_code == 429:
                await asyncio.sleep(1)
                continue
            answer.raise_for_status()
            rows = answer.json()
            upstream += [_upstream_row(row) for row in rows]
            if len(rows) < 50000:
                break
            offset += 50000
    store = await asyncio.to_thread(_store_rows, ctx.workdir / "pipeline" / "violations.sqlite3", dots)
    store_diff = report.multiset_difference(store, upstream)

    expected: dict[str, tuple[int, int, int]] = {}
    for dot in dots:
        mine = [row for row in upstream if row[0] == int(dot)]
        expected[dot] = (len(mine), sum(1 for row in mine if row[5]), len({row[1] for row in mine}))
    projection_diff = 0
    began = time.monotonic()
    for dot in dots:
        status = (await api.get(f"/api/companies/{dot}/status")).json()
        summary = (status.get("sources", {}).get("violations") or {}).get("summary") or {}
        shown = (summary.get("total"), summary.get("oos"), summary.get("inspections"))
        projection_diff += shown != expected[dot]
    ctx.note("pipeline", delta_compare_s=round(time.monotonic() - began, 1), delta_compare_rows=len(upstream))
    return store_diff, projection_diff


def _upstream_row(row: dict[str, str]) -> tuple[Any, ...]:
    return (
        int(row["dot_number"]),
        row["unique_id"],
        row["viol_code"],
        row.get("viol_unit") or "",
        int(row["time_weight"]),
        row.get("oos_indicator") == "true",
    )


def _store_rows(path: Path, dots: list[str]) -> list[tuple[Any, ...]]:
    """The current (not aged-out) violations the source's store holds for `dots`."""
    wanted = {int(d) for d in dots}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        found = db.execute(
            "SELECT dot_number, unique_id, viol_code, viol_unit, time_weight, oos "
            "FROM violations_violation WHERE aged_out_at IS NULL"
        ).fetchall()
    return [(d, u, c, unit or "", int(w), bool(o)) for d, u, c, unit, w, o in found if d in wanted]
