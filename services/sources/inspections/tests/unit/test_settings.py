from __future__ import annotations

from pathlib import Path

import pytest

from fmcsa_source_inspections.settings import Settings


def test_defaults_point_at_the_real_host_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FMCSA_INSPECTIONS_API_KEY", "FMCSA_INSPECTIONS_BASE_URL", "FMCSA_INSPECTIONS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert str(settings.base_url) == "https://saferwebapi.com/"
    assert settings.api_key is None
    assert (settings.rate_per_s, settings.concurrency, settings.inline_retries) == (1.0, 8, 2)
    assert (settings.connect_timeout_s, settings.read_timeout_s) == (5.0, 30.0)
    assert (settings.inline_wait_max_s, settings.retry_after_max_s, settings.max_attempts) == (5.0, 3600.0, 5)
    assert (settings.rate_limit_wait_s, settings.burst_headroom_s, settings.backoff_initial_s) == (
        60.0,
        0.25,
        0.5,
    )
    assert settings.oos_rate_change_points == 5.0


def test_the_oos_rate_change_threshold_comes_from_the_environment_and_must_be_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FMCSA_INSPECTIONS_OOS_RATE_CHANGE_POINTS", "2.5")
    assert Settings().oos_rate_change_points == 2.5
    monkeypatch.setenv("FMCSA_INSPECTIONS_OOS_RATE_CHANGE_POINTS", "0")
    with pytest.raises(ValueError, match="greater than 0"):
        Settings()


def test_every_field_is_described() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []


def test_settings_come_from_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FMCSA_INSPECTIONS_API_KEY", "k-123456")
    monkeypatch.setenv("FMCSA_INSPECTIONS_RATE_PER_S", "2.5")
    monkeypatch.setenv("FMCSA_INSPECTIONS_BASE_URL", "http://127.0.0.1:8900")
    monkeypatch.setenv("FMCSA_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "k-123456"
    assert "k-123456" not in repr(settings)
    assert settings.rate_per_s == 2.5
    assert settings.resolved_database_url() == f"sqlite:///{(tmp_path / 'inspections.sqlite3').resolve()}"
    monkeypatch.setenv("FMCSA_INSPECTIONS_DATABASE_URL", "postgresql://db/fmcsa")
    assert Settings().resolved_database_url() == "postgresql://db/fmcsa"
