from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fmcsa_runtime.settings import ServiceSettings
from fmcsa_sandbox.admin import validate_changes
from fmcsa_sandbox.settings import RUNTIME_KNOBS, Settings


def test_defaults_serve_healthy_data_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FMCSA_SANDBOX_PORT", "FMCSA_SANDBOX_HOST", "FMCSA_SANDBOX_STATE_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8900)
    assert settings.qcmobile_web_key.get_secret_value() == "sandbox-webkey"
    assert settings.socrata_app_token.get_secret_value() == "sandbox-app-token"
    assert settings.saferweb_api_key.get_secret_value() == "sandbox-api-key"
    assert all(
        not value for name, value in settings.runtime_knobs().items() if name not in ("retry_after", "hang_s")
    )
    assert settings.retry_after is True
    assert settings.hang_s == 300
    assert settings.data_version == 1


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMCSA_SANDBOX_CSA_RATE_PER_S", "4")
    monkeypatch.setenv("FMCSA_SANDBOX_VIOLATIONS_P_202", "0.25")
    monkeypatch.setenv("FMCSA_SANDBOX_SAFERWEB_LAPSED_KEYS", "old-key-1, old-key-2,")
    settings = Settings()
    assert settings.csa_rate_per_s == 4
    assert settings.violations_p_202 == 0.25
    assert settings.lapsed_keys() == {"old-key-1", "old-key-2"}


def test_fault_probabilities_of_one_source_cannot_add_up_past_one() -> None:
    with pytest.raises(ValidationError):
        Settings(csa_p_5xx=0.6, csa_p_429=0.6)
    Settings(csa_p_5xx=0.6, violations_p_429=0.6)


def test_every_runtime_knob_is_a_setting() -> None:
    assert set(RUNTIME_KNOBS) <= set(Settings.model_fields)
    assert len(RUNTIME_KNOBS) == 27


def test_knob_changes_are_validated_like_the_settings() -> None:
    assert validate_changes({"csa_p_5xx": 0.1, "violations_rate_per_s": 20, "retry_after": False}) == {
        "csa_p_5xx": 0.1,
        "violations_rate_per_s": 20.0,
        "retry_after": False,
    }
    for bad in (
        {"csa_p_5xx": 1.5},
        {"csa_p_5xx": "0.1"},
        {"nope": 1},
        {"csa_rate_per_s": -1},
        [1],
        {"retry_after": 1},
    ):
        assert isinstance(validate_changes(bad), str), bad


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    own = set(Settings.model_fields) - set(ServiceSettings.model_fields)
    for name in own:
        assert f"| `FMCSA_SANDBOX_{name.upper()}` |" in readme, name
