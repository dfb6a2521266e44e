"""`./fmcsa bench`: the pure pieces of bench/ (percentiles, scaling, the table, the JSON keys), the
generated event mix, and the command line the CLI spawns. No figure is asserted: those are the
benchmark's to report, never a test's.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fmcsa_cli.main import app

ROOT = Path(__file__).resolve().parents[4]
if str(ROOT) not in sys.path:  # bench/ is plain modules at the repository root, not a workspace member
    sys.path.insert(0, str(ROOT))
report = importlib.import_module("bench.report")

ISSUE_KEYS = {
    "rate_utilization",
    "sandbox_429s",
    "rate_utilization_loaded",  # issue 21: the same full sync with both cores kept busy
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
    "rebuild_from_snapshot_seconds",  # issue 26
    "upstream_calls_per_carrier_cycle",  # issue 24
    "carriers_kept_fresh_at_default_limits",
    "delta_equals_full",
    "rebuild_10m_seconds",  # issue 26
}


def test_every_key_of_the_issue_has_a_goal() -> None:
    assert set(report.KEYS) == ISSUE_KEYS
    assert len(report.KEYS) == len(ISSUE_KEYS)


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        ([5.0], 0.99, 5.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0),
        ([5.0, 1.0, 4.0, 2.0, 3.0], 0.5, 3.0),  # order does not matter
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.95, 4.8),  # interpolated between the closest ranks
        ([1.0, 2.0], 0.0, 1.0),
        ([1.0, 2.0], 1.0, 2.0),
        (list(map(float, range(1, 101))), 0.99, 99.01),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], share: float, expected: float
) -> None:
    assert report.percentile(values, share) == pytest.approx(expected)


def test_percentile_refuses_no_values_and_shares_outside_0_to_1() -> None:
    with pytest.raises(ValueError, match="no values"):
        report.percentile([], 0.5)
    with pytest.raises(ValueError, match="share"):
        report.percentile([1.0], 99)


def test_a_quick_rebuild_is_scaled_to_a_million_events_with_its_start_up_paid_once() -> None:
    assert report.scaled_seconds(fixed_s=2.0, per_event_s=20.0, events=100_000) == pytest.approx(202.0)
    assert report.scaled_seconds(fixed_s=0.0, per_event_s=60.0, events=1_000_000) == pytest.approx(60.0)
    with pytest.raises(ValueError, match="events"):
        report.scaled_seconds(fixed_s=0.0, per_event_s=1.0, events=0)


def test_the_sequential_sample_is_scaled_to_every_company() -> None:
    assert report.sequential_estimate_s(12.0, 10, 2_000) == pytest.approx(2_400.0)
    with pytest.raises(ValueError, match="sample_size"):
        report.sequential_estimate_s(1.0, 0, 10)


def test_utilization_is_requests_over_window_times_rate() -> None:
    assert report.utilization(1_900, 100.0, 20.0) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="positive"):
        report.utilization(1, 0.0, 20.0)


def test_spread_ratio_is_busiest_over_quietest_and_infinite_with_an_empty_minute() -> None:
    assert report.max_min_ratio([5, 6, 5, 6]) == pytest.approx(1.2)
    assert math.isinf(report.max_min_ratio([3, 0, 4]))


@pytest.mark.parametrize(
    ("key", "value", "met"),
    [
        ("rate_utilization", 0.95, True),
        ("rate_utilization", 0.9499, False),
        ("sandbox_429s", 0.0, True),
        ("sandbox_429s", 1.0, False),
        ("spread_max_min_ratio", 1.2, True),
        ("gateway_p99_ms", 10.01, False),
        ("gateway_p99_ms", None, None),
    ],
)
def test_goals_are_met_at_their_bound_and_unknown_without_a_figure(
    key: str, value: float | None, met: bool | None
) -> None:
    assert report.GOAL_BY_KEY[key].met(value) is met


def test_a_goal_relative_to_another_key_needs_that_figure_of_the_same_run() -> None:
    goal = report.GOAL_BY_KEY["rebuild_10m_seconds"]
    assert goal.text == "<= 10.5 x rebuild_1m_seconds"
    assert goal.met(420.0, {"rebuild_1m_seconds": 40.0}) is True  # 10.5 x 40 = 420: linear enough
    assert goal.met(421.0, {"rebuild_1m_seconds": 40.0}) is False
    assert goal.met(100.0, {}) is None  # no 1M figure: unknown, not met
    assert goal.met(100.0) is None
    doc = report.document(
        mode="full", started_at="2026-01-01T00:00:00+00:00", total_s=1.0, errors={}, details={}, machine={},
        settings={}, results={"rebuild_1m_seconds": 30.0, "rebuild_10m_seconds": 330.0},
    )  # fmt: skip
    assert doc["met"]["rebuild_10m_seconds"] is False
    assert doc["goals"]["rebuild_10m_seconds"] == "<= 10.5 x rebuild_1m_seconds"


def test_the_table_has_one_row_per_key_with_value_goal_and_verdict() -> None:
    text = report.table({"rate_utilization": 0.97, "gateway_p99_ms": 23.456, "sandbox_429s": 0.0})
    lines = text.splitlines()
    assert lines[0].split() == ["key", "value", "goal", "met?"]
    assert len(lines) == 2 + len(report.KEYS)
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == ISSUE_KEYS
    assert rows["rate_utilization"].split()[1:] == ["0.97", ">=", "0.95", "yes"]
    assert rows["gateway_p99_ms"].split()[1:] == ["23.5", "<=", "10", "ms", "NO"]
    assert rows["sandbox_429s"].split()[1] == "0"
    assert rows["fold_ratio_vs_raw_read"].split()[1] == "-"
    assert rows["fold_ratio_vs_raw_read"].endswith("n/a")


def test_the_json_names_every_key_with_null_where_a_stage_failed() -> None:
    doc = report.document(
        mode="quick",
        started_at="2026-01-01T00:00:00+00:00",
        total_s=123.456,
        results={"rate_utilization": 0.96, "spread_max_min_ratio": math.inf},
        details={"pipeline": {"companies": 200}},
        errors={"events": "RuntimeError: boom"},
        machine={"nproc": 2},
        settings={"mode": "quick"},
    )
    assert set(doc["results"]) == ISSUE_KEYS
    assert doc["results"]["rate_utilization"] == 0.96
    assert doc["results"]["gateway_p99_ms"] is None
    assert doc["results"]["spread_max_min_ratio"] is None  # not a JSON number
    assert doc["met"]["rate_utilization"] is True
    assert doc["met"]["gateway_p99_ms"] is None
    assert doc["errors"] == {"events": "RuntimeError: boom"}
    assert doc["total_seconds"] == 123.5
    json.dumps(doc, allow_nan=False)


def test_a_stage_line_names_the_figure_and_its_goal() -> None:
    line = report.stage_line("scheduler_rss_mb", 93.04)
    assert "scheduler_rss_mb = 93.0" in line
    assert "<= 150" in line
    assert line.endswith("yes)")


def test_the_generated_events_decode_and_follow_the_mix() -> None:
    projection = importlib.import_module("bench.projection")
    from datetime import UTC, datetime

    from fmcsa_events.decoder import Decoded, decode, encode
    from fmcsa_events.envelope import envelope_for

    events = list(projection.generate(5_000, 500))
    assert len(events) == 5_000
    kinds: dict[str, int] = {}
    for event in events:
        headers = envelope_for(event, producer="bench", occurred_at=datetime.now(UTC)).to_headers()
        assert isinstance(decode(headers, encode(event)), Decoded)
        kinds[event.TYPE] = kinds.get(event.TYPE, 0) + 1
    assert kinds["company_registered"] == 500
    assert kinds["sync_requested"] >= 1_500
    assert {"source_synced", "source_failed"} <= set(kinds)
    assert list(projection.generate(100, 10)) == list(projection.generate(100, 10))  # deterministic


def test_bench_spawns_the_benchmark_from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def call(command: list[str], **kwargs: Any) -> int:
        calls.append({"command": command, **kwargs})
        return 0

    monkeypatch.setattr(subprocess, "call", call)
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["bench", "--quick", "--only", "scheduler"])
    assert result.exit_code == 0, result.output
    (spawned,) = calls
    assert spawned["command"][1:] == ["-m", "bench.run", "--quick", "--only=scheduler"]
    assert Path(spawned["cwd"]) == ROOT
    assert str(ROOT) in spawned["env"]["PYTHONPATH"].split(":")


def test_bench_help_names_quick() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    assert "--quick" in result.output


async def test_the_load_generator_sends_a_get_again_when_the_server_closed_a_kept_connection() -> None:
    """uvicorn closes a keep-alive connection idle for 5 s; the open loop's pool keeps idle ones. A GET
    on such a connection is sent once more on a new one (as HTTP clients do), not counted as an error.
    """
    import asyncio

    loadgen = importlib.import_module("bench.loadgen")
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    connections = 0

    async def one_answer_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()  # keep-alive promised, then closed: what an idle timeout does

    server = await asyncio.start_server(one_answer_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = loadgen.Target(f"http://127.0.0.1:{port}", "/x/{dot}", (1, 10), None, seed=1)
        tally = await loadgen.run_open(target, rate=20, duration_s=0.5, warmup_s=0, max_conns=1)
    finally:
        server.close()
        await server.wait_closed()
    summary = tally.summary(0.5)
    assert summary["errors"] == 0, summary
    assert summary["ok"] == 10
    assert summary["stale_reconnects"] == 9  # every GET after the first found its connection closed
    assert connections == 10


def test_kept_fresh_is_the_calls_of_one_publication_over_a_carriers_calls_and_the_lowest_binds() -> None:
    fresh = report.kept_fresh(
        {"csa": 2.0, "inspections": 1.0, "authority.datahub": 0.0},
        {"csa": 2.0, "inspections": 1.0, "authority.datahub": 2.0},
        report.CADENCE_S,
    )
    assert fresh["csa"] == pytest.approx(2.0 * 30 * 86_400 / 2.0)
    assert fresh["inspections"] == pytest.approx(86_400)
    assert math.isinf(fresh["authority.datahub"])
    assert report.binding(fresh) == ("inspections", pytest.approx(86_400))


def test_kept_fresh_takes_a_limits_fixed_calls_out_of_its_budget() -> None:
    rate, cadence = {"authority.datahub": 2.0}, report.CADENCE_S
    fixed = {"authority.datahub": 72_800.0}
    assert report.kept_fresh({"authority.datahub": 0.5}, rate, cadence, fixed) == {
        "authority.datahub": pytest.approx(200_000)
    }
    assert report.kept_fresh({"authority.datahub": 0.5}, rate, cadence, {"authority.datahub": 1e9}) == {
        "authority.datahub": 0.0
    }


def test_the_bench_gate_figures_are_the_authority_defaults() -> None:
    fields = importlib.import_module("fmcsa_source_authority.settings").Settings.model_fields
    delta = importlib.import_module("bench.delta")
    assert fields["daily_difference_check_s"].default == delta.DEFAULT_GATE_CHECK_S
    assert fields["full_refresh_s"].default == delta.FULL_REFRESH_DAYS * 86_400
    assert len(fields["daily_difference_datasets"].default.split(",")) == delta.DIFFERENCE_DATASETS


def test_the_inspections_gate_frees_saferwebapi_and_authority_binds_at_the_same_churn() -> None:
    """At 5% of carriers listed a day and the 7-day full refresh: 0.193 SaferWebAPI calls per carrier
    per day (447,900 carriers at 1/s, against 86,400 with one call a day), QCMobile's 4 x 0.193 at 2/s
    (224,000) now binds; the gate's DataHub calls are a fixed few hundred a day.
    """
    per_day = report.gated_calls(0.05, 7.0, 1.0)
    calls = {"inspections": per_day, "authority": per_day * 4, "inspections.datahub": 0.0}
    rate = {"inspections": 1.0, "authority": 2.0, "inspections.datahub": 2.0}
    fixed = {"inspections.datahub": report.gate_fixed_calls(2, 300.0)}
    fresh = report.kept_fresh(calls, rate, report.CADENCE_S, fixed)
    assert fresh["inspections"] == pytest.approx(447_900, rel=1e-3)
    assert fixed["inspections.datahub"] == 580
    assert report.binding(fresh) == ("authority", pytest.approx(223_950, rel=1e-3))


def test_the_bench_inspections_gate_figures_are_the_inspections_defaults() -> None:
    settings = importlib.import_module("fmcsa_source_inspections.settings").Settings
    delta = importlib.import_module("bench.delta")
    fields = settings.model_fields
    assert fields["change_gate_check_s"].default == delta.DEFAULT_GATE_CHECK_S
    assert fields["full_refresh_s"].default == delta.FULL_REFRESH_DAYS * 86_400
    assert len(settings().gate_files()) == delta.INSPECTIONS_GATE_FILES


def test_the_multiset_difference_counts_unmatched_rows_on_both_sides() -> None:
    assert report.multiset_difference([1, 1, 2], [1, 2, 2, 3]) == 3
    assert report.multiset_difference([(1, "a")], [(1, "a")]) == 0


def test_the_bench_default_rates_are_the_sources_defaults() -> None:
    def fields(source: str) -> Any:
        return importlib.import_module(f"fmcsa_source_{source}.settings").Settings.model_fields

    defaults = {s: fields(s)["rate_per_s"].default for s in ("csa", "violations", "inspections")}
    defaults["authority"] = fields("authority")["rate_per_s"].default
    defaults["authority.datahub"] = fields("authority")["datahub_rate_per_s"].default
    defaults["inspections.datahub"] = importlib.import_module(
        "fmcsa_source_inspections.upstream"
    ).DATAHUB_RATE_PER_S
    assert defaults == importlib.import_module("bench.delta").DEFAULT_RATE_PER_S
