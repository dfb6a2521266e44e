"""`python -m fmcsa_notifier.doctor`: the notifier service's part of `./fmcsa doctor` (its store answers)."""

from __future__ import annotations

import argparse

from fmcsa_notifier.settings import Settings
from fmcsa_runtime.doctor import Check, main, store_check


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    return [
        await store_check("notifier: store", settings.resolved_database_url(), "FMCSA_NOTIFIER_DATABASE_URL")
    ]


if __name__ == "__main__":
    main(checks, service="notifier", env_prefix="FMCSA_NOTIFIER_")
