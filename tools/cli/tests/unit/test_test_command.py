"""`./fmcsa test` adds worker and durations options unless its arguments set them."""

import pytest
import typer

from fmcsa_cli.main import pytest_defaults, suite_environment


def test_the_whole_suite_runs_over_two_workers_and_lists_the_slowest_tests() -> None:
    assert pytest_defaults([], {}) == ["-n", "2", "--dist", "loadgroup", "--durations=20"]


@pytest.mark.parametrize("given", [["-n", "1"], ["-n2"], ["--numprocesses=4"], ["--numprocesses", "auto"]])
def test_workers_given_as_an_argument_win(given: list[str]) -> None:
    assert pytest_defaults([*given, "-k", "scheduler"], {"FMCSA_TEST_WORKERS": "5"}) == ["--durations=20"]


def test_the_environment_sets_the_workers_and_zero_means_one_process() -> None:
    assert pytest_defaults(["--durations=5"], {"FMCSA_TEST_WORKERS": "2"}) == [
        "-n",
        "2",
        "--dist",
        "loadgroup",
    ]
    assert pytest_defaults([], {"FMCSA_TEST_WORKERS": "0"}) == ["-n", "0", "--durations=20"]


def test_one_shared_nats_server_means_one_process_by_default() -> None:
    assert pytest_defaults([], {"FMCSA_TEST_NATS_URL": "nats://127.0.0.1:4222"})[:2] == ["-n", "0"]
    shared_but_asked = {"FMCSA_TEST_NATS_URL": "nats://127.0.0.1:4222", "FMCSA_TEST_WORKERS": "2"}
    assert pytest_defaults([], shared_but_asked)[:2] == ["-n", "2"]


def test_a_worker_count_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(typer.BadParameter, match="FMCSA_TEST_WORKERS"):
        pytest_defaults([], {"FMCSA_TEST_WORKERS": "many"})


def test_the_suite_runs_without_pythondontwritebytecode_so_pytest_keeps_its_rewritten_modules() -> None:
    given = {"PATH": "/usr/bin", "PYTHONDONTWRITEBYTECODE": "1", "FMCSA_TEST_WORKERS": "2"}
    assert suite_environment(given) == {"PATH": "/usr/bin", "FMCSA_TEST_WORKERS": "2"}
