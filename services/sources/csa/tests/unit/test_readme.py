"""The csa README says what the code does: its change kinds and its settings table."""

from __future__ import annotations

from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ErrorKind
from fmcsa_source_csa.settings import Settings
from fmcsa_source_kit.readme import readme_problems, section

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_exactly_the_change_kinds_and_the_settings() -> None:
    assert readme_problems(README, source=SourceKey.CSA, settings=Settings) == []


def test_the_failure_kinds_table_names_only_error_kinds_that_exist() -> None:
    text = section(README.read_text(), "Failure kinds")
    assert text is not None
    named = {
        cell.strip().strip("`")
        for line in text.splitlines()
        if line.startswith("| ")
        for cell in [line.split("|")[2]]
    }
    named -= {"ErrorKind", "---"}
    assert named
    assert named <= {kind.value for kind in ErrorKind}
