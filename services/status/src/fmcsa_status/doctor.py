"""`python -m fmcsa_status.doctor`: the status service's part of `./fmcsa doctor` (its store answers)."""

from __future__ import annotations

import argparse

from fmcsa_runtime.doctor import Check, main, store_check
from fmcsa_status.settings import Settings


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    return [await store_check("status: store", settings.resolved_database_url(), "FMCSA_STATUS_DATABASE_URL")]


if __name__ == "__main__":
    main(checks, service="status", env_prefix="FMCSA_STATUS_")
