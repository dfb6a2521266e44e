"""`python -m fmcsa_gateway.doctor`: the gateway's part of `./fmcsa doctor` (the stores it reads answer)."""

from __future__ import annotations

import argparse

from fmcsa_gateway.settings import Settings
from fmcsa_runtime.doctor import Check, main, store_check


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    return [
        await store_check(
            "gateway: status store",
            settings.resolved_status_database_url(),
            "FMCSA_GATEWAY_STATUS_DATABASE_URL",
        ),
        await store_check(
            "gateway: notifier store",
            settings.resolved_notifier_database_url(),
            "FMCSA_GATEWAY_NOTIFIER_DATABASE_URL",
        ),
    ]


if __name__ == "__main__":
    main(checks, service="gateway", env_prefix="FMCSA_GATEWAY_")
