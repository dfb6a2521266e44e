"""`python -m fmcsa_scheduler` / `fmcsa-scheduler`: run one scheduler replica until SIGTERM or SIGINT."""

from __future__ import annotations

from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_scheduler.settings import Settings


def main() -> None:
    parse_command_line(
        Settings,
        prog="fmcsa-scheduler",
        description="Publishes SyncRequested on each schedule and settles the outcomes.",
    )
    # imported after the command line: `--help` answers without loading the service
    from fmcsa_runtime.service import run
    from fmcsa_scheduler.app import create_app

    settings = Settings()
    configure_logging(service="scheduler", level=settings.log_level, json=settings.log_json)
    run(create_app(settings))


if __name__ == "__main__":
    main()
