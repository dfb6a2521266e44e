"""Run the gateway: `python -m fmcsa_gateway` or `fmcsa-gateway`."""

from __future__ import annotations

from fmcsa_gateway.settings import Settings
from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_runtime.redaction import register_secret


def main() -> None:
    parse_command_line(
        Settings,
        prog="fmcsa-gateway",
        description="The REST API and admin page over the status store and the bus.",
    )
    # imported after the command line: `--help` answers without loading the service
    from fmcsa_gateway.access_log import AccessLog
    from fmcsa_gateway.app import create_app
    from fmcsa_runtime.service import serve

    settings = Settings()
    configure_logging(service="gateway", level=settings.log_level, json=settings.log_json)
    if settings.jwt_secret is not None:
        register_secret(settings.jwt_secret.get_secret_value())
    serve(
        AccessLog(create_app(settings)),
        host=settings.http_host,
        port=settings.http_port,
        grace_s=settings.grace_s,
    )


if __name__ == "__main__":
    main()
