"""The README says what the code does: its change kinds are the source's, its settings table is the
Settings fields with their defaults and descriptions, its failure table names real kinds.
"""

from __future__ import annotations

import re
from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CHANGE_KINDS_BY_SOURCE, ErrorKind
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_source_authority.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def first_cells(text: str) -> list[str]:
    return re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE)


def test_the_change_kinds_table_is_exactly_the_sources_kinds() -> None:
    assert first_cells(section("Change kinds")) == [
        k.value for k in CHANGE_KINDS_BY_SOURCE[SourceKey.AUTHORITY]
    ]


def test_the_settings_table_is_every_field_with_its_default_and_description() -> None:
    table = section("Settings")
    shared = {n for n, f in ServiceSettings.model_fields.items() if f.validation_alias is not None}
    for name, field in Settings.model_fields.items():
        if name in shared:
            continue
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        row = f"| `FMCSA_AUTHORITY_{name.upper()}` | {shown} | {description} |"
        assert row in table, row
    rows = re.findall(r"^\| `(FMCSA_AUTHORITY_[A-Z_]+)`", table, flags=re.MULTILINE)
    assert len(rows) == len(set(Settings.model_fields) - shared)


def test_the_failure_table_names_only_real_kinds_and_all_the_client_returns() -> None:
    named = set(re.findall(r"\| `([a-z_]+)`", section("Failure kinds")))
    kinds = {k.value for k in ErrorKind}
    assert named <= kinds
    assert named == {
        "internal",
        "suspect_drop",  # the store's, through the kit's drop guard
        "not_configured",
        "not_found",
        "rate_limited",
        "upstream_error",
        "invalid_response",
        "timeout",
    }
