"""`./fmcsa sandbox bump|stats` against a real sandbox process found through FMCSA_DATA_DIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fmcsa_cli.main import app
from fmcsa_embedded import free_port, sandbox_process


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder whose running sandbox wrote `sandbox.json` into it, as under `./fmcsa up`."""
    folder = tmp_path / "data"
    with sandbox_process(tmp_path, {"FMCSA_SANDBOX_STATE_FILE": str(folder / "sandbox.json")}):
        yield folder


def version_of(folder: Path) -> int:
    url = json.loads((folder / "sandbox.json").read_text())["url"]
    data_version = httpx.get(f"{url}/_sandbox/stats", timeout=5).json()["data_version"]
    assert isinstance(data_version, int)
    return data_version


def invoke(folder: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["sandbox", *args], env={"FMCSA_DATA_DIR": str(folder), "FMCSA_SANDBOX_STATE_FILE": None}
    )
    return result.exit_code, result.stdout, result.stderr


def test_bump_advances_the_running_sandbox_and_prints_the_new_version(data_dir: Path) -> None:
    assert version_of(data_dir) == 1
    assert invoke(data_dir, "bump") == (0, "2\n", "")
    assert invoke(data_dir, "bump") == (0, "3\n", "")
    assert version_of(data_dir) == 3


def test_stats_prints_the_counters_as_json(data_dir: Path) -> None:
    code, out, _ = invoke(data_dir, "stats")
    assert code == 0
    stats = json.loads(out)
    assert stats["data_version"] == 1
    assert set(stats["sources"]) == {"csa", "violations", "inspections", "authority"}


def test_python_m_fmcsa_cli_finds_the_sandbox_through_fmcsa_data_dir(data_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FMCSA_SANDBOX_STATE_FILE"}
    env["FMCSA_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "fmcsa_cli", "sandbox", "bump"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "2\n"), done.stderr
    assert version_of(data_dir) == 2


def test_a_sandbox_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a sandbox that died uncleanly
    (tmp_path / "sandbox.json").write_text(json.dumps({"url": url, "pid": 999_999}))
    for command in ("bump", "stats"):
        code, out, err = invoke(tmp_path, command)
        assert (code, out) == (1, "")
        assert f"the sandbox at {url} does not answer" in err


def test_a_stopped_sandbox_leaves_no_state_file_and_bump_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with sandbox_process(tmp_path, {"FMCSA_SANDBOX_STATE_FILE": str(folder / "sandbox.json")}):
        assert invoke(folder, "bump")[0] == 0
    code, out, err = invoke(folder, "bump")
    assert (code, out) == (1, "")
    assert "no running sandbox" in err
