"""`python -m fmcsa_status` / `fmcsa-status`: run the status projector until SIGTERM or SIGINT."""

from __future__ import annotations

from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_status.settings import Settings


def main() -> None:
    parse_command_line(
        Settings,
        prog="fmcsa-status",
        description="The status projector: folds the events into the status store.",
    )
    # imported after the command line: `--help` answers without loading the service
    from fmcsa_runtime.service import run
    from fmcsa_status.app import create_app, tune_garbage_collector

    settings = Settings()
    configure_logging(service="status", level=settings.log_level, json=settings.log_json)
    tune_garbage_collector()
    run(create_app(settings))


if __name__ == "__main__":
    main()
