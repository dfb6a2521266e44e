"""`./fmcsa sandbox`: where it looks for the running sandbox, and what it says when there is none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmcsa_cli.main import app
from fmcsa_cli.sandbox_commands import SandboxUnreachable, sandbox_url, state_file


def test_the_state_file_is_sandbox_json_in_the_data_folder() -> None:
    assert state_file({}) == Path(".fmcsa-data") / "sandbox.json"
    assert state_file({"FMCSA_DATA_DIR": "/srv/fmcsa"}) == Path("/srv/fmcsa/sandbox.json")


def test_an_explicit_state_file_wins_as_up_passes_it_on() -> None:
    environ = {"FMCSA_DATA_DIR": "/srv/fmcsa", "FMCSA_SANDBOX_STATE_FILE": "/run/sandbox.json"}
    assert state_file(environ) == Path("/run/sandbox.json")


def test_the_url_comes_from_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps({"url": "http://127.0.0.1:8900/", "pid": 4242}))
    assert sandbox_url(path) == "http://127.0.0.1:8900"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no running sandbox"),
        ("{not json", "cannot read"),
        (json.dumps({"pid": 1}), "names no URL"),
        (json.dumps(["http://127.0.0.1:1"]), "names no URL"),
        (json.dumps({"url": "127.0.0.1:8900"}), "names no URL"),
    ],
)
def test_a_missing_or_malformed_state_file_is_a_clear_error(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "sandbox.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SandboxUnreachable, match=says):
        sandbox_url(path)


@pytest.mark.parametrize("command", ["bump", "stats"])
def test_without_a_running_sandbox_the_commands_exit_1_and_say_why(tmp_path: Path, command: str) -> None:
    result = CliRunner().invoke(
        app,
        ["sandbox", command],
        env={"FMCSA_DATA_DIR": str(tmp_path), "FMCSA_SANDBOX_STATE_FILE": None},
    )
    assert result.exit_code == 1
    assert "no running sandbox" in result.output
    assert str(tmp_path / "sandbox.json") in result.output
    assert "./fmcsa up" in result.output


def test_the_sandbox_group_lists_bump_and_stats() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--help"])
    assert result.exit_code == 0
    assert "bump" in result.output
    assert "stats" in result.output
