"""`python -m fmcsa_status` / `fmcsa-status`: run the status projector until SIGTERM or SIGINT."""

from __future__ import annotations

from fmcsa_runtime.logging import configure_logging
from fmcsa_runtime.service import run
from fmcsa_status.app import create_app, tune_garbage_collector
from fmcsa_status.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(service="status", level=settings.log_level, json=settings.log_json)
    tune_garbage_collector()
    run(create_app(settings), settings)


if __name__ == "__main__":
    main()
