"""The service README states what the code does: its change kinds, failure kinds and settings table."""

from __future__ import annotations

import re
from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CHANGE_KINDS_BY_SOURCE, ErrorKind
from fmcsa_source_kit.readme import readme_problems
from fmcsa_source_violations.domain.changes import CHANGE_SUBJECT, violation_totals
from fmcsa_source_violations.settings import Settings

README_PATH = Path(__file__).resolve().parents[2] / "README.md"
README = README_PATH.read_text()


def table(heading: str) -> list[list[str]]:
    """The body rows of the first table under `## heading`, as stripped cells (header and rule left out)."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def unquoted(cell: str) -> str:
    return cell.removeprefix("`").removesuffix("`")


def test_the_change_kinds_table_is_the_sources_change_kinds_with_their_subject() -> None:
    rows = table("Change kinds")
    kinds = CHANGE_KINDS_BY_SOURCE[SourceKey.VIOLATIONS]
    assert [unquoted(row[0]) for row in rows] == [kind.value for kind in kinds]
    assert {unquoted(row[1]) for row in rows} == {CHANGE_SUBJECT}


def test_the_before_and_after_shape_names_every_key_of_the_totals() -> None:
    section = README.split("\n## Change kinds\n", 1)[1].split("\n## ", 1)[0]
    for key in violation_totals([]):
        assert f'"{key}"' in section, key


def test_the_failure_kinds_are_error_kinds_and_cover_the_ones_this_source_answers() -> None:
    kinds = {re.match(r"`([a-z_]+)`", row[1]) for row in table("Failure kinds")}
    named = {match.group(1) for match in kinds if match}
    assert named <= {kind.value for kind in ErrorKind}
    answered = {"internal", "upstream_error", "not_configured", "rate_limited", "invalid_response", "timeout"}
    answered.add("suspect_drop")  # the store's, through the kit's drop guard
    assert named == answered


def test_the_change_kinds_and_settings_tables_are_the_code() -> None:
    assert readme_problems(README_PATH, source=SourceKey.VIOLATIONS, settings=Settings) == []
