"""`python -m fmcsa_source_authority.doctor`: the authority source's part of `./fmcsa doctor`.

From the settings the service would use: the QCMobile host resolves and answers over verified TLS, the
webKey is accepted and one carrier's whole sync parses (QCMobile's four calls and DataHub's filings,
through the service's own client and parsers, no retries), the rate-limit headers and `Date` QCMobile
sends, and the store. Without a webKey nothing is sent. Prints JSON rows (fmcsa_runtime.doctor).
"""

from __future__ import annotations

import argparse

import httpx

from fmcsa_runtime.doctor import Check, main
from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.upstream import AuthorityClient
from fmcsa_source_kit.doctor import Fetched, SourceProbe, qcmobile_key, source_checks
from fmcsa_source_kit.failures import Failure

KEY, MISSING_KEY = qcmobile_key("authority", "FMCSA_AUTHORITY_WEB_KEY")


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

    return await source_checks(probe, args.dot, fetch)


if __name__ == "__main__":
    main(checks, service="authority", env_prefix="FMCSA_AUTHORITY_")
