"""The service README states what the code does: its change kinds, failure kinds and settings table."""

from __future__ import annotations

import re
from pathlib import Path

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CHANGE_KINDS_BY_SOURCE, ErrorKind
from fmcsa_source_violations.domain import CHANGE_SUBJECT, violation_totals
from fmcsa_source_violations.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


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
    assert named == answered


def test_the_settings_table_is_the_settings_fields_and_their_descriptions() -> None:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    own = {
        f"{prefix}{name}".upper(): field.description
        for name, field in Settings.model_fields.items()
        if field.validation_alias is None  # the shared FMCSA_ settings are in the root README
    }
    documented = {unquoted(row[0]): row[2].replace("\\|", "|") for row in table("Settings")}
    assert documented == own
