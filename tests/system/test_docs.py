"""Docs match code: README's configuration table lists every setting of every service, and
ARCHITECTURE.md's event catalog lists every event with its version.

On failure the test prints the table it expects, ready to paste.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from pydantic_settings import BaseSettings

from fmcsa_events.models import EVENT_TYPES
from fmcsa_runtime.settings import ServiceSettings
from fmcsa_source_kit.readme import default_text, env_name

ROOT = Path(__file__).resolve().parents[2]

SETTINGS_MODULES = [
    "fmcsa_scheduler.settings",
    "fmcsa_source_csa.settings",
    "fmcsa_source_violations.settings",
    "fmcsa_source_inspections.settings",
    "fmcsa_source_authority.settings",
    "fmcsa_status.settings",
    "fmcsa_gateway.settings",
    "fmcsa_sandbox.settings",
    "fmcsa_notifier.settings",
]


def rows_for(cls: type[BaseSettings], *, shared: bool) -> list[str]:
    rows = []
    base = ServiceSettings.model_fields
    for name, field in cls.model_fields.items():
        if shared and field.validation_alias is None:
            continue  # a per-service field of the base class: listed under each service's prefix
        shared_alias = name in base and base[name].validation_alias is not None
        if not shared and shared_alias and field.validation_alias == base[name].validation_alias:
            continue  # a shared FMCSA_ field: listed once, in the shared block
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(cls, name, field)}` | {default_text(field)} | {description} |")
    return rows


def expected_table() -> str:
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    lines += rows_for(ServiceSettings, shared=True)
    for module_name in SETTINGS_MODULES:
        cls = importlib.import_module(module_name).Settings
        lines += rows_for(cls, shared=False)
    return "\n".join(lines)


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    table = expected_table()
    missing = [row for row in table.splitlines() if row not in readme]
    assert not missing, "README.md's configuration table is out of date; expected:\n\n" + table


def test_architecture_event_catalog_lists_every_event_with_its_version() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    for cls in EVENT_TYPES:
        assert re.search(rf"`{cls.__name__}`\s*\|\s*`{cls.TYPE}`\s*\|\s*{cls.VERSION}\s*\|", text), (
            f"ARCHITECTURE.md's event catalog lacks a row `{cls.__name__}` | `{cls.TYPE}` | {cls.VERSION} |"
        )


def test_readme_first_screen_has_exactly_the_two_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    commands = re.findall(r"^\./fmcsa \w+", first_screen, flags=re.MULTILINE)
    assert commands == ["./fmcsa up", "./fmcsa test"]


CLI_SETTINGS = {"FMCSA_ENV_FILE", "FMCSA_NATS_PORT"}
"""Settings the CLI itself reads (tools/cli), not a service."""


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def setting_names() -> set[str]:
    names = {env_name(ServiceSettings, n, f) for n, f in ServiceSettings.model_fields.items()}
    for module_name in SETTINGS_MODULES:
        cls = importlib.import_module(module_name).Settings
        names |= {env_name(cls, n, f) for n, f in cls.model_fields.items()}
    return names


def test_real_upstreams_section_names_only_settings_that_exist() -> None:
    section = readme_section("Real upstreams")
    named = set(re.findall(r"FMCSA_[A-Z0-9_]*[A-Z0-9]", section))
    assert named, "the section names no setting"
    unknown = named - setting_names() - CLI_SETTINGS
    assert not unknown, f"README's Real upstreams names settings nothing reads: {sorted(unknown)}"


def test_real_upstreams_section_hosts_are_the_settings_defaults() -> None:
    from fmcsa_cli.upstreams import SOURCES

    section = readme_section("Real upstreams")
    for source in SOURCES:
        assert f"`{source.real_base_url}` (`{source.base_url_setting}`)" in section
        assert f"`{source.key_setting}`" in section


def test_every_fmcsa_command_the_readme_names_exists_with_its_options() -> None:
    import typer.main

    from fmcsa_cli.main import app
    from fmcsa_cli.upstreams import Upstream

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    text = (ROOT / "README.md").read_text()
    # commands as written in code: after a backtick or at a line's start (past VAR=value assignments)
    uses = re.findall(
        r"(?:^|`)(?:[A-Z_]+=\S+ +)*\./fmcsa ([a-z][a-z-]*)((?: +-{1,2}[a-z][a-z-]*(?: +[a-z0-9.=]+)?)*)",
        text,
        flags=re.MULTILINE,
    )
    assert ("doctor", "") in uses
    assert any(command == "up" and "--upstream real" in options for command, options in uses)
    for command, options in uses:
        assert command in commands, f"README names ./fmcsa {command}, which does not exist"
        params = {opt: p for p in commands[command].params for opt in (*p.opts, *p.secondary_opts)}
        if (getattr(commands[command], "context_settings", None) or {}).get("ignore_unknown_options"):
            continue  # `./fmcsa test` passes its options to pytest
        tokens = options.split()
        for index, token in enumerate(tokens):
            if not token.startswith("-"):
                continue
            assert token in params, f"README uses ./fmcsa {command} {token}, which it does not take"
            if token == "--upstream" and index + 1 < len(tokens):
                assert tokens[index + 1] in {u.value for u in Upstream}, f"--upstream {tokens[index + 1]}"
