"""A source service's entry point (`python -m fmcsa_source_<name>` and `fmcsa-source-<name>`)."""

from __future__ import annotations

from importlib import import_module

from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_source_kit.settings import SourceSettings


def run_source(settings_type: type[SourceSettings], *, description: str) -> None:
    """Answer `--help` from the settings alone, else configure the logs and run the source's app
    (`fmcsa_source_<name>.app.create_app`), imported only then so `--help` loads no service code.
    """
    source = settings_type.SOURCE
    parse_command_line(settings_type, prog=f"fmcsa-source-{source}", description=description)
    from fmcsa_runtime.service import run

    settings = settings_type()
    configure_logging(service=f"source-{source}", level=settings.log_level, json=settings.log_json)
    run(import_module(f"fmcsa_source_{source}.app").create_app(settings))
