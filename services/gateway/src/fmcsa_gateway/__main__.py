"""Run the gateway: `python -m fmcsa_gateway` or `fmcsa-gateway`."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from fmcsa_gateway.settings import Settings
from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_runtime.redaction import register_secret


def load_settings() -> Settings:
    """The settings, or exit 2 naming each refused setting and why (never its value: it may be a secret)."""
    try:
        return Settings()
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        print(f"fmcsa-gateway refuses to start: {reasons}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    parse_command_line(
        Settings,
        prog="fmcsa-gateway",
        description="The REST API and admin page over the status store and the bus.",
    )
    # imported after the command line: `--help` answers without loading the service
    from fmcsa_gateway.access_log import AccessLog
    from fmcsa_gateway.app import create_app
    from fmcsa_gateway.serving import uvicorn_options
    from fmcsa_runtime.service import serve

    settings = load_settings()
    configure_logging(service="gateway", level=settings.log_level, json=settings.log_json)
    if settings.jwt_secret is not None:
        register_secret(settings.jwt_secret.get_secret_value())
    serve(
        AccessLog(create_app(settings)),
        host=settings.http_host,
        port=settings.http_port,
        grace_s=settings.grace_s,
        **uvicorn_options(settings),
    )


if __name__ == "__main__":
    main()
