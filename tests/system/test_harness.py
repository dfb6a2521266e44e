"""The root conftest's parallel plan: which tests share the serial worker (xdist hands it out first)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def root_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fmcsa_root_conftest", ROOT / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_serial_path_exists() -> None:
    for path in root_conftest().SERIAL_PATHS:
        assert (ROOT / path).exists(), f"SERIAL_PATHS names {path}, which is not there"


def test_the_timing_bound_system_tests_share_one_group_the_other_system_tests_go_a_module_at_a_time() -> None:
    conftest = root_conftest()
    scheduler: Any = object.__new__(conftest.SerialGroup)  # _split_scope needs no state
    assert {
        scheduler._split_scope("tests/reliability/test_r1_kills.py::test_r1"),
        scheduler._split_scope("tests/reliability/test_r8_replay.py::test_r8"),
        scheduler._split_scope("tests/system/test_up.py::test_up_prints_the_url_then_stops_cleanly"),
        scheduler._split_scope("tests/system/test_bench_smoke.py::test_a_smoke_sized_bench"),
        scheduler._split_scope(
            "services/scheduler/tests/integration/test_scheduler_processes.py::test_two_replicas[60.0]"
        ),
    } == {"serial"}
    for module in ("services/gateway/tests/e2e/test_admin_page.py", "tests/system/test_sources.py"):
        assert scheduler._split_scope(f"{module}::test_one[desktop]") == module
        assert scheduler._split_scope(f"{module}::test_two") == module
    for other in (
        "services/gateway/tests/integration/test_companies.py::test_lists_page[sqlite]",
        "services/scheduler/tests/integration/test_inflight_markers.py::test_take",
        "libs/events/tests/unit/test_decoder.py::test_unknown_type",
    ):
        assert scheduler._split_scope(other) == other


def test_only_loadgroup_gets_the_serial_scheduler() -> None:
    conftest = root_conftest()

    def config(dist: str) -> Any:
        return SimpleNamespace(getvalue=lambda name: dist if name == "dist" else None)

    assert conftest.pytest_xdist_make_scheduler(config("load"), None) is None
    assert conftest.pytest_xdist_make_scheduler(config("worksteal"), None) is None
