"""Run the notifier: `python -m fmcsa_notifier` or `fmcsa-notifier`."""

from __future__ import annotations

from fmcsa_notifier.settings import Settings
from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging


def main() -> None:
    parse_command_line(
        Settings, prog="fmcsa-notifier", description="Sends signed webhooks for the alert rules."
    )
    # imported after the command line: `--help` answers without loading the service
    from fmcsa_notifier.app import create_app
    from fmcsa_runtime.service import run

    settings = Settings()
    configure_logging(service="notifier", level=settings.log_level, json=settings.log_json)
    run(create_app(settings))


if __name__ == "__main__":
    main()
