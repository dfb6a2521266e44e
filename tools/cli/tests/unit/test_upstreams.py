"""Where `up` and `doctor` take the upstream settings from: the environment over FMCSA_ENV_FILE."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from fmcsa_cli.doctor import SERVICE_DOCTORS
from fmcsa_cli.launcher import ALL_SERVICES, sandbox_wiring
from fmcsa_cli.upstreams import (
    SANDBOX_API_KEY,
    SANDBOX_APP_TOKEN,
    SANDBOX_WEB_KEY,
    SOURCES,
    EnvFileError,
    Upstream,
    keys_going_to_the_sandbox,
    read_env_file,
    settings_environment,
)
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.permissions import source_user


def env_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "fmcsa.env"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_real_base_urls_are_the_settings_defaults() -> None:
    for source in SOURCES:
        settings = importlib.import_module(f"fmcsa_source_{source.source}.settings").Settings
        prefix = f"FMCSA_{source.source.upper()}_"
        base_field = source.base_url_setting.removeprefix(prefix).lower()
        default = str(settings.model_fields[base_field].default).rstrip("/")
        assert default == source.real_base_url
        key_field = source.key_setting.removeprefix(prefix).lower()
        assert key_field in settings.model_fields


def test_the_environment_wins_over_the_file_and_real_fills_the_base_urls(tmp_path: Path) -> None:
    path = env_file(
        tmp_path, "FMCSA_CSA_WEB_KEY=from-file\nexport FMCSA_INSPECTIONS_API_KEY='quoted value'\n"
    )
    environ = {"FMCSA_ENV_FILE": str(path), "FMCSA_CSA_WEB_KEY": "from-env", "HOME": "/x"}
    real = settings_environment(environ, Upstream.REAL)
    assert real["FMCSA_CSA_WEB_KEY"] == "from-env"
    assert real["FMCSA_INSPECTIONS_API_KEY"] == "quoted value"
    assert real["FMCSA_VIOLATIONS_BASE_URL"] == "https://data.transportation.gov"
    assert "HOME" not in real
    assert "FMCSA_ENV_FILE" not in real
    sandbox = settings_environment(environ, Upstream.SANDBOX)
    assert "FMCSA_VIOLATIONS_BASE_URL" not in sandbox


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o602], ids=oct)
def test_a_file_others_may_read_is_refused_without_printing_a_value(tmp_path: Path, mode: int) -> None:
    path = env_file(tmp_path, "FMCSA_CSA_WEB_KEY=value-that-must-not-show\n", mode)
    with pytest.raises(EnvFileError) as error:
        read_env_file({"FMCSA_ENV_FILE": str(path)})
    assert "chmod 600" in str(error.value)
    assert "value-that-must-not-show" not in str(error.value)


def test_only_fmcsa_settings_belong_in_the_file(tmp_path: Path) -> None:
    path = env_file(tmp_path, "PYTHONPATH=/evil\nFMCSA_CSA_WEB_KEY=k\n", 0o400)
    with pytest.raises(EnvFileError, match="PYTHONPATH"):
        read_env_file({"FMCSA_ENV_FILE": str(path)})


def test_a_missing_file_is_an_error_and_no_file_is_nothing(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="cannot read"):
        read_env_file({"FMCSA_ENV_FILE": str(tmp_path / "absent.env")})
    assert read_env_file({}) == {}


def test_anonymous_socrata_reads_are_paced_down_unless_the_user_chose_a_rate() -> None:
    assert settings_environment({}, Upstream.REAL)["FMCSA_VIOLATIONS_RATE_PER_S"] == "0.2"
    with_token = settings_environment({"FMCSA_VIOLATIONS_APP_TOKEN": "t0ken"}, Upstream.REAL)
    assert "FMCSA_VIOLATIONS_RATE_PER_S" not in with_token
    chosen = settings_environment({"FMCSA_VIOLATIONS_RATE_PER_S": "1"}, Upstream.REAL)
    assert chosen["FMCSA_VIOLATIONS_RATE_PER_S"] == "1"
    assert "FMCSA_VIOLATIONS_RATE_PER_S" not in settings_environment({}, Upstream.SANDBOX)
    assert settings_environment({}, Upstream.REAL)["FMCSA_AUTHORITY_DATAHUB_RATE_PER_S"] == "0.2"
    assert "FMCSA_AUTHORITY_DATAHUB_RATE_PER_S" not in settings_environment(
        {"FMCSA_AUTHORITY_APP_TOKEN": "t0ken"}, Upstream.REAL
    )
    assert "FMCSA_AUTHORITY_RATE_PER_S" not in settings_environment({}, Upstream.REAL)  # QCMobile's


def test_every_source_key_is_a_service_with_its_doctor_and_its_upstreams() -> None:
    """A new source is a `SourceKey` and its rows in `SOURCES`: `up` starts `fmcsa_source_<key>` as its own
    bus user and `doctor` runs its checks without a list of their own.
    """
    services = {spec.name: spec for spec in ALL_SERVICES}
    for key in SourceKey:
        spec = services[key.value]
        assert (spec.module, spec.http_port_env, spec.bus_user) == (
            f"fmcsa_source_{key.value}",
            f"FMCSA_{key.name}_HTTP_PORT",
            source_user(key),
        )
        assert (key.value, f"fmcsa_source_{key.value}.doctor") in SERVICE_DOCTORS
    assert {upstream.source for upstream in SOURCES} == set(SourceKey)
    assert [s.name for s in ALL_SERVICES][:2] == ["sandbox", "status"], "the sandbox and projector first"
    assert ALL_SERVICES[-1].name == "gateway"


def test_the_sandbox_wiring_points_every_upstream_at_the_sandbox_with_its_key_only_there() -> None:
    url = "http://127.0.0.1:9"
    wired = sandbox_wiring(url, {})
    for upstream in SOURCES:
        assert wired[upstream.base_url_setting] == url + upstream.sandbox_path
        assert wired[upstream.key_setting] == upstream.sandbox_key
    elsewhere = sandbox_wiring(url, {"FMCSA_AUTHORITY_DATAHUB_BASE_URL": "https://data.transportation.gov"})
    assert "FMCSA_AUTHORITY_APP_TOKEN" not in elsewhere, "no sandbox credential to a host the user chose"
    skips = (
        "FMCSA_VIOLATIONS_FRESHNESS_CHECK_S",
        "FMCSA_CSA_PUBLICATION_CHECK_S",
        "FMCSA_INSPECTIONS_PUBLICATION_PERIOD_S",
        "FMCSA_AUTHORITY_PUBLICATION_PERIOD_S",
    )
    assert {wired[name] for name in skips} == {"0"}, "a sync against the sandbox fetches (a bump is seen)"
    assert wired["FMCSA_AUTHORITY_DAILY_DIFFERENCE"] == "false"
    assert wired["FMCSA_INSPECTIONS_CHANGE_GATE"] == "false"
    assert elsewhere["FMCSA_AUTHORITY_WEB_KEY"] == SANDBOX_WEB_KEY
    assert wired["FMCSA_CSA_BASE_URL"] == wired["FMCSA_AUTHORITY_BASE_URL"] == f"{url}/qc/services"
    assert (wired["FMCSA_VIOLATIONS_APP_TOKEN"], wired["FMCSA_INSPECTIONS_API_KEY"]) == (
        SANDBOX_APP_TOKEN,
        SANDBOX_API_KEY,
    )


def test_a_key_for_a_source_left_on_the_sandbox_is_named_not_shown() -> None:
    settings = {
        "FMCSA_CSA_WEB_KEY": "real-webkey-value",
        "FMCSA_INSPECTIONS_API_KEY": "real-api-key-value",
        "FMCSA_INSPECTIONS_BASE_URL": "https://saferwebapi.com",
    }
    notes = keys_going_to_the_sandbox(settings)
    assert len(notes) == 1
    assert "FMCSA_CSA_WEB_KEY is set but csa calls the sandbox" in notes[0]
    assert "real-webkey-value" not in notes[0]
    assert keys_going_to_the_sandbox({}) == []
