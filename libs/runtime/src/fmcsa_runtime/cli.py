"""The command line of every service entry point: `--help` (`-h`) lists the service's settings and exits 0
without starting anything; any other argument is an error (exit 2). Configuration is the environment.

The settings list is generated from the service's pydantic settings class: each field's environment
variable, default (secrets shown as `(secret)`, never their value) and description.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings


def env_name(settings: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from (its first alias, else prefix + name)."""
    alias = field.validation_alias
    if alias is not None:
        choices: Any = getattr(alias, "choices", [alias])
        return str(choices[0])
    return f"{settings.model_config.get('env_prefix', '')}{name}".upper()


def default_value(field: FieldInfo) -> str:
    """A field's default as help and docs show it: `unset`, `(secret)` (never the value), `(computed)`,
    `""` for an empty string, else the value.
    """
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if value is None:
        return "unset"
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    return str(value) or '""'


def settings_help(settings: type[BaseSettings]) -> str:
    """One block per setting: `ENV_NAME (default: ...)` and its description, indented."""
    blocks = []
    for name, field in settings.model_fields.items():
        head = f"  {env_name(settings, name, field)}  (field {name}; default: {default_value(field)})"
        text = textwrap.fill(
            field.description or "", width=100, initial_indent=" " * 6, subsequent_indent=" " * 6
        )
        blocks.append(f"{head}\n{text}" if text else head)
    return "settings (environment variables):\n" + "\n".join(blocks)


def parse_command_line(
    settings: type[BaseSettings], *, prog: str, description: str, argv: Sequence[str] | None = None
) -> None:
    """Answer `--help`/`-h` with the settings and exit 0; exit 2 on any argument; return otherwise."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"{description} Configured by environment variables only; it runs until SIGTERM or "
        "SIGINT.",
        epilog=settings_help(settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
