"""Run the inspections source service: `python -m fmcsa_source_inspections` or `fmcsa-source-inspections`."""

from __future__ import annotations

from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_source_inspections.settings import Settings


def main() -> None:
    parse_command_line(
        Settings,
        prog="fmcsa-source-inspections",
        description="The inspections source service: answers SyncRequested from SaferWeb.",
    )
    # imported after the command line: `--help` answers without loading the service
    from fmcsa_runtime.service import run
    from fmcsa_source_inspections.app import create_app

    settings = Settings()
    configure_logging(service="source-inspections", level=settings.log_level, json=settings.log_json)
    run(create_app(settings), settings)


if __name__ == "__main__":
    main()
