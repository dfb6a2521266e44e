"""`python -m fmcsa_source_authority.doctor`: the authority source's part of `./fmcsa doctor`.

From the settings the service would use: the QCMobile host resolves and answers over verified TLS, the
webKey is accepted and one carrier's whole sync parses (QCMobile's four calls and DataHub's filings,
through the service's own client and parsers, no retries), the rate-limit headers and `Date` QCMobile
sends, and the store; with the daily difference gate on, each of its datasets answers its metadata and
was published within `STALE_AFTER`. Without a webKey nothing is sent. Prints JSON rows
(fmcsa_runtime.doctor).
"""

from __future__ import annotations

import argparse
from datetime import timedelta

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_runtime.doctor import Check, main
from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.upstream import AuthorityClient
from fmcsa_source_kit.doctor import Fetched, SourceProbe, gate_check, qcmobile_key, source_checks
from fmcsa_source_kit.failures import Failure

KEY, MISSING_KEY = qcmobile_key("authority", "FMCSA_AUTHORITY_WEB_KEY")
STALE_AFTER = timedelta(days=4)
"""A daily difference dataset not published for longer (a long weekend is three days) has stopped. Public
code reports that FMCSA froze the legacy insurance dataset `qh9u-swkp` this way in May 2026 (unverified;
docs/upstreams.md 8.4)."""


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    base = str(settings.base_url)
    probe = SourceProbe.of(
        settings, base, KEY, credential=settings.web_key, missing_key=MISSING_KEY, client_base_url=base
    )

    async def fetch(http: httpx.AsyncClient, dot: str) -> Fetched:
        once = settings.model_copy(update={"inline_retries": 0})
        client = AuthorityClient.from_settings(once, http=http)
        try:
            result = await client.fetch(dot)
        finally:
            await client.aclose()
        if isinstance(result, Failure):
            return result
        return f"carrier, {len(result.dockets)} dockets and {len(result.filings)} insurance filings parsed"

    rows = await source_checks(probe, args.dot, fetch)
    if settings.daily_difference and probe.has_key:  # without a key every sync is not_configured anyway
        client = AuthorityClient.from_settings(settings.model_copy(update={"inline_retries": 0}))
        try:
            rows.insert(
                -1,  # before the store's row
                await gate_check(
                    "authority",
                    client.datahub,
                    settings.daily_difference_ids(),
                    retry_after_max_s=settings.retry_after_max_s,
                    switch="FMCSA_AUTHORITY_DAILY_DIFFERENCE",
                    now=utc_now(),
                    stale_after=STALE_AFTER,
                ),
            )
        finally:
            await client.aclose()
    return rows


if __name__ == "__main__":
    main(checks, service="authority", env_prefix="FMCSA_AUTHORITY_")
