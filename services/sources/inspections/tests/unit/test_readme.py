"""The service README matches the code: its change kinds are the source's, its settings table lists every
setting of this service with its default and description, and its failure table names real kinds.
"""

from __future__ import annotations

import re
from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ErrorKind
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_kit.readme import readme_problems

README_PATH = Path(__file__).resolve().parents[2] / "README.md"
README = README_PATH.read_text()
PREFIX = "FMCSA_INSPECTIONS_"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def first_cells(text: str) -> list[str]:
    """The first cell of every table row of `text`, without its backticks (headers and rules dropped)."""
    cells = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    return [cell.strip("`") for cell in cells if cell not in ("kind", "variable", "upstream answer")]


def test_the_change_kinds_and_settings_tables_are_the_code() -> None:
    assert readme_problems(README_PATH, source=SourceKey.INSPECTIONS, settings=Settings) == []


def test_every_setting_the_readme_names_exists() -> None:
    named = set(re.findall(rf"{PREFIX}[A-Z0-9_]*[A-Z0-9]", README))
    assert named
    known = {f"{PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert named <= known, sorted(named - known)


def test_the_failure_table_names_only_real_kinds_and_each_answer_once() -> None:
    table = section("Failure kinds")
    kinds = {cell.split("|")[2].strip() for cell in table.splitlines() if cell.startswith("| ")}
    named = {kind for row in kinds for kind in re.findall(r"`([a-z_]+)`", row)}
    assert named <= {kind.value for kind in ErrorKind}
    answers = first_cells(table)
    assert len(answers) == len(set(answers))
