"""The README says what the code does: its change kinds are the source's, its settings table is the
Settings fields with their defaults and descriptions, its failure table names real kinds.
"""

from __future__ import annotations

import re
from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ErrorKind
from fmcsa_source_authority.settings import Settings
from fmcsa_source_kit.readme import readme_problems

README_PATH = Path(__file__).resolve().parents[2] / "README.md"
README = README_PATH.read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def test_the_events_change_kinds_failure_kinds_and_settings_are_the_code() -> None:
    assert readme_problems(README_PATH, source=SourceKey.AUTHORITY, settings=Settings) == []


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
