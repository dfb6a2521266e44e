"""Run the authority source service: `python -m fmcsa_source_authority` or `fmcsa-source-authority`."""

from __future__ import annotations

from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_source_authority.settings import Settings


def main() -> None:
    parse_command_line(
        Settings,
        prog="fmcsa-source-authority",
        description="The authority source service: answers SyncRequested from QCMobile and DataHub.",
    )
    # imported after the command line: `--help` answers without loading the service
    from fmcsa_runtime.service import run
    from fmcsa_source_authority.app import create_app

    settings = Settings()
    configure_logging(service="source-authority", level=settings.log_level, json=settings.log_json)
    run(create_app(settings), settings)


if __name__ == "__main__":
    main()
