"""The service README matches the code: its change kinds are the source's, its settings table lists every
setting of this service with its default and description, and its failure table names real kinds.
"""

from __future__ import annotations

import re
from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CHANGE_KINDS_BY_SOURCE, ErrorKind
from fmcsa_source_inspections.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
PREFIX = "FMCSA_INSPECTIONS_"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def first_cells(text: str) -> list[str]:
    """The first cell of every table row of `text`, without its backticks (headers and rules dropped)."""
    cells = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    return [cell.strip("`") for cell in cells if cell not in ("kind", "variable", "upstream answer")]


def expected_rows() -> list[str]:
    """The settings rows as the top-level README writes them (tests/system/test_docs.py)."""
    rows = []
    for name, field in Settings.model_fields.items():
        if field.validation_alias is not None:
            continue  # a shared FMCSA_ setting: the top-level README lists it
        default = field.default
        if default is None:
            shown = "unset"
        elif hasattr(default, "get_secret_value"):
            shown = "(secret)"
        else:
            shown = f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{PREFIX}{name.upper()}` | {shown} | {description} |")
    return rows


def test_the_change_kinds_are_exactly_the_sources() -> None:
    documented = first_cells(section("Change kinds"))
    assert documented == [kind.value for kind in CHANGE_KINDS_BY_SOURCE[SourceKey.INSPECTIONS]]


def test_the_settings_table_lists_every_setting_with_its_default_and_description() -> None:
    table = section("Settings")
    expected = expected_rows()
    missing = [row for row in expected if row not in table.splitlines()]
    assert not missing, "README.md's settings table is out of date; expected:\n\n" + "\n".join(expected)
    assert first_cells(table) == [row.split("`")[1] for row in expected]  # and nothing else


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
