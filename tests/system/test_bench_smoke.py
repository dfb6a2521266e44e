"""`./fmcsa bench` in a reduced form (`--smoke`: tiny sizes, every stage, every key): it runs to the
end, prints the table, and writes a JSON with every key of issue 11 and no failed stage. Figures are
not asserted (they are the benchmark's to report); only that each stage produced one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(400)
def test_a_smoke_sized_bench_runs_every_stage_and_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "key" in done.stdout
    assert "met?" in done.stdout
    doc = json.loads(out.read_text())
    assert doc["mode"] == "smoke"
    assert doc["errors"] == {}, doc["errors"]
    assert set(doc["results"]) == {
        "rate_utilization",
        "sandbox_429s",
        "rate_utilization_loaded",
        "sandbox_429s_loaded",
        "speedup_vs_sequential",
        "fold_ratio_vs_raw_read",
        "rebuild_1m_seconds",
        "gateway_p99_ms",
        "gateway_rps_ratio_vs_bare",
        "scheduler_rss_mb",
        "spread_max_min_ratio",
        "trigger_to_visible_p95_ms",
        "change_to_webhook_p95_ms",
        "rebuild_from_snapshot_seconds",
        "upstream_calls_per_carrier_cycle",
        "carriers_kept_fresh_at_default_limits",
        "delta_equals_full",
        "rebuild_10m_seconds",
    }
    assert all(value is not None for value in doc["results"].values()), doc["results"]
