"""The README's settings table names every setting this service reads under its own prefix."""

from __future__ import annotations

from pathlib import Path

from fmcsa_status.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_own_setting_is_in_the_readme_table() -> None:
    text = README.read_text()
    own = [name for name, field in Settings.model_fields.items() if field.validation_alias is None]
    missing = [f"FMCSA_STATUS_{name.upper()}" for name in own if f"`FMCSA_STATUS_{name.upper()}`" not in text]
    assert missing == []
