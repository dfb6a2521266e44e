"""The violations Settings: working defaults, the FMCSA_VIOLATIONS_ prefix, documented fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fmcsa_source_violations.settings import Settings


def test_defaults_point_at_the_real_host_with_the_documented_values() -> None:
    settings = Settings()
    assert str(settings.base_url).rstrip("/") == "https://data.transportation.gov"
    assert settings.dataset == "8mt8-2mdr"
    assert settings.app_token is None
    assert (settings.rate_per_s, settings.concurrency) == (2.0, 8)
    assert (settings.connect_timeout_s, settings.read_timeout_s) == (5.0, 30.0)
    assert (settings.inline_retries, settings.inline_wait_max_s, settings.retry_after_max_s) == (
        2,
        5.0,
        3600.0,
    )
    assert (settings.max_attempts, settings.page_size, settings.max_pages) == (5, 1000, 100)


def test_every_field_is_described() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []


def test_the_environment_prefix_is_fmcsa_violations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMCSA_VIOLATIONS_APP_TOKEN", "tok-1234")
    monkeypatch.setenv("FMCSA_VIOLATIONS_PAGE_SIZE", "500")
    monkeypatch.setenv("FMCSA_CSA_PAGE_SIZE", "7")
    settings = Settings()
    assert settings.app_token is not None
    assert settings.app_token.get_secret_value() == "tok-1234"
    assert "tok-1234" not in repr(settings)
    assert settings.page_size == 500


def test_an_empty_token_means_anonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMCSA_VIOLATIONS_APP_TOKEN", "  ")
    assert Settings().app_token is None


@pytest.mark.parametrize(
    ("field", "value"), [("page_size", 0), ("page_size", 50001), ("dataset", "8mt8-2mdr' OR")]
)
def test_out_of_range_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({field: value})


def test_the_database_defaults_to_a_sqlite_file_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'violations.sqlite3'}"
    assert Settings(database_url="postgresql://u@h/db").resolved_database_url() == "postgresql://u@h/db"
