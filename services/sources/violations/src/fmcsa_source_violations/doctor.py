"""`python -m fmcsa_source_violations.doctor`: the violations source's part of `./fmcsa doctor`.

From the settings the service would use: the Socrata host resolves and answers over verified TLS,
the app token (if set) is accepted and one small page of the dataset parses (the service's own client
and parser), the rate-limit headers and `Date` it sends, and the store. Without a token the call is
anonymous, as the service's would be. Prints JSON rows (fmcsa_runtime.doctor).
"""

from __future__ import annotations

import argparse

import httpx

from fmcsa_runtime.doctor import Check, main
from fmcsa_source_kit.doctor import Fetched, KeyAdvice, SourceProbe, source_checks
from fmcsa_source_kit.failures import Failure
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.upstream import SocrataClient

KEY = KeyAdvice(
    "FMCSA_VIOLATIONS_APP_TOKEN",
    rejected="Socrata refused this app token: copy it again from your data.transportation.gov developer "
    "settings (Tyler Data & Insights) into FMCSA_VIOLATIONS_APP_TOKEN, or unset it to read anonymously",
)
PROBE_ROWS = 5
"""Rows asked for: enough to exercise the parser, cheap for any carrier."""


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    probe = SourceProbe.of(
        settings,
        str(settings.base_url),
        KEY,
        credential=settings.app_token,
        missing_key=None,  # Socrata answers anonymous reads (from a smaller, shared pool)
    )

    async def fetch(http: httpx.AsyncClient, dot: str) -> Fetched:
        cheap = settings.model_copy(update={"page_size": PROBE_ROWS, "inline_retries": 0})
        result = await SocrataClient.from_settings(cheap, http=http).first_page(dot)
        return (
            result
            if isinstance(result, Failure)
            else f"{len(result.rows)} rows parsed (asked for {PROBE_ROWS})"
        )

    return await source_checks(probe, args.dot, fetch)


if __name__ == "__main__":
    main(checks, service="violations", env_prefix="FMCSA_VIOLATIONS_")
