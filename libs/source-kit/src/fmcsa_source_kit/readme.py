"""A source's README against its code: the events it consumes and emits, its change kinds, its failure
kinds and its settings table.

Every source README has a `## Consumes and emits` section naming in backticks each event of
`SOURCE_EVENTS` (the kit's runner publishes them all, for every source); a `## Change kinds` section
whose table's first column names each kind in backticks (`basic_alert_started`), exactly
`CHANGE_KINDS_BY_SOURCE[source]`; a `## Failure kinds` table (`| answer | kind | retried |`) whose kind
column names only `ErrorKind` values; and a `## Settings` section whose table has one row per field of
the source's `Settings` read under its own prefix, in the row format of the project README's
configuration table (`tests/system/test_docs.py`):

    | `FMCSA_CSA_WEB_KEY` | unset | <the field's description, `|` escaped> |

A source's README test calls `readme_problems` and asserts it answers `[]`; each problem says what
to change, and a settings problem prints the whole expected table, ready to paste.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CHANGE_KINDS_BY_SOURCE,
    CarrierDataChanged,
    ErrorKind,
    Event,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
)
from fmcsa_runtime.cli import default_value, env_name
from fmcsa_runtime.settings import ServiceSettings

CONSUMES_TITLE = "Consumes and emits"
FAILURE_KINDS_TITLE = "Failure kinds"
CHANGE_KINDS_TITLE = "Change kinds"
SOURCE_EVENTS: tuple[type[Event], ...] = (
    SyncRequested,
    CarrierDataChanged,
    SyncAttemptFailed,
    SourceSynced,
    SourceFailed,
)
"""What every source consumes (`SyncRequested`) and may publish (what `fmcsa_events.permissions` lets a
source's bus user publish)."""
SETTINGS_TITLE = "Settings"
SETTINGS_HEADER = ("| variable | default | what it does |", "|---|---|---|")

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FIRST_CODE = re.compile(r"^\|\s*`([^`]+)`")
_KIND = re.compile(r"`([a-z]+(?:_[a-z]+)*)`")


def section(readme: str, title: str) -> str | None:
    """The text under the heading `title` (any level) up to the next heading of the same or a higher
    level, or None when the README has no such heading.
    """
    lines = readme.splitlines()
    for start, line in enumerate(lines):
        match = _HEADING.match(line)
        if match and match.group(2) == title:
            level = len(match.group(1))
            body: list[str] = []
            for following in lines[start + 1 :]:
                heading = _HEADING.match(following)
                if heading and len(heading.group(1)) <= level:
                    break
                body.append(following)
            return "\n".join(body)
    return None


def table_lines(text: str) -> list[str]:
    """The lines of the markdown table(s) in `text`, header and separator included, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("|")]


def default_text(field: FieldInfo) -> str:
    """A field's default as the configuration table shows it: `unset`, `(secret)`, `(computed)`, `` `x` ``
    (the `--help` text of `fmcsa_runtime.cli`, a value in backticks).
    """
    value = field.default
    plain = field.default_factory is None and value is not None and not hasattr(value, "get_secret_value")
    return f"`{default_value(field)}`" if plain else default_value(field)


def settings_rows(cls: type[BaseSettings]) -> list[str]:
    """One table row per field of `cls` read under its own prefix, in field order; the shared `FMCSA_`
    fields of `ServiceSettings` (NATS, data folder, logs) are left out: the project README lists them
    once (the rule of `tests/system/test_docs.py`).
    """
    base = ServiceSettings.model_fields
    rows = []
    for name, field in cls.model_fields.items():
        shared = base[name].validation_alias if name in base else None
        if shared is not None and field.validation_alias == shared:
            continue
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(cls, name, field)}` | {default_text(field)} | {description} |")
    return rows


def change_kind_problems(readme: str, source: SourceKey) -> list[str]:
    """What is wrong with the `## Change kinds` table against `CHANGE_KINDS_BY_SOURCE[source]`."""
    text = section(readme, CHANGE_KINDS_TITLE)
    if text is None:
        return [f"no '{CHANGE_KINDS_TITLE}' section"]
    listed = [m.group(1) for line in table_lines(text) if (m := _FIRST_CODE.match(line))]
    expected = [kind.value for kind in CHANGE_KINDS_BY_SOURCE[source]]
    problems = [f"change kind {kind} is not listed" for kind in expected if kind not in listed]
    extra = [kind for kind in listed if kind not in expected]
    problems += [f"{kind} is listed but no change kind of {source}" for kind in extra]
    repeated = sorted(kind for kind in set(listed) if listed.count(kind) > 1)
    problems += [f"{kind} is listed {listed.count(kind)} times" for kind in repeated]
    return problems


def settings_problems(readme: str, settings: type[BaseSettings]) -> list[str]:
    """What is wrong with the `## Settings` table against `settings`: a missing, extra or stale row."""
    text = section(readme, SETTINGS_TITLE)
    if text is None:
        return [f"no '{SETTINGS_TITLE}' section"]
    expected = settings_rows(settings)
    rows = [line for line in table_lines(text) if line not in SETTINGS_HEADER]
    problems = [f"missing or stale row: {row}" for row in expected if row not in rows]
    problems += [f"row matches no setting: {row}" for row in rows if row not in expected]
    if problems:
        table = "\n".join([*SETTINGS_HEADER, *expected])
        problems.append(f"the '{SETTINGS_TITLE}' table should read:\n\n{table}\n")
    return problems


def consumes_problems(readme: str) -> list[str]:
    """What is missing from the `## Consumes and emits` section: an event of `SOURCE_EVENTS` it does not
    name in backticks.
    """
    text = section(readme, CONSUMES_TITLE)
    if text is None:
        return [f"no '{CONSUMES_TITLE}' section"]
    return [f"event {e.__name__} is not named" for e in SOURCE_EVENTS if f"`{e.__name__}`" not in text]


def failure_kind_problems(readme: str) -> list[str]:
    """What is wrong with the `## Failure kinds` section: no table (`| answer | kind | retried |`), or a
    backticked word in its kind column that is no `ErrorKind`.
    """
    text = section(readme, FAILURE_KINDS_TITLE)
    if text is None:
        return [f"no '{FAILURE_KINDS_TITLE}' section"]
    rows = [_cells(line) for line in table_lines(text)[2:]]
    if not rows:
        return [f"the '{FAILURE_KINDS_TITLE}' section has no table"]
    kinds = {kind.value for kind in ErrorKind}
    named = {word for cells in rows if len(cells) > 1 for word in _KIND.findall(cells[1])}
    problems = [f"failure kind {word} is no ErrorKind" for word in sorted(named - kinds)]
    return problems or ([] if named else [f"the '{FAILURE_KINDS_TITLE}' table names no kind"])


def _cells(line: str) -> list[str]:
    """A table row's cells (an escaped bar inside a cell is no separator)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def readme_problems(path: Path, *, source: SourceKey, settings: type[BaseSettings]) -> list[str]:
    """Everything `consumes_problems`, `change_kind_problems`, `failure_kind_problems` and
    `settings_problems` find in the README at `path`.
    """
    readme = path.read_text(encoding="utf-8")
    return (
        consumes_problems(readme)
        + change_kind_problems(readme, source)
        + failure_kind_problems(readme)
        + settings_problems(readme, settings)
    )
