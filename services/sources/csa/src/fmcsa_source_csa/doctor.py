"""`python -m fmcsa_source_csa.doctor`: the csa source's part of `./fmcsa doctor`.

From the settings the service would use: the QCMobile host resolves and answers over verified TLS,
the webKey is accepted and the answer parses (one carrier: `/carriers/{dot}` and `/basics`, through
the service's own client and parsers, no retries), the rate-limit headers and `Date` it sends, and
the store. Without a webKey nothing is sent. Prints JSON rows (fmcsa_runtime.doctor).
"""

from __future__ import annotations

import argparse

import httpx

from fmcsa_runtime.doctor import Check, main
from fmcsa_source_csa.settings import Settings
from fmcsa_source_csa.upstream import QCMobileClient
from fmcsa_source_kit.doctor import Fetched, SourceProbe, qcmobile_key, source_checks
from fmcsa_source_kit.failures import Failure

KEY, MISSING_KEY = qcmobile_key("csa", "FMCSA_CSA_WEB_KEY")


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    probe = SourceProbe.of(
        settings, str(settings.base_url), KEY, credential=settings.web_key, missing_key=MISSING_KEY
    )

    async def fetch(http: httpx.AsyncClient, dot: str) -> Fetched:
        client = QCMobileClient.from_settings(settings.model_copy(update={"inline_retries": 0}), http=http)
        result = await client.fetch(dot)
        return result if isinstance(result, Failure) else f"carrier and {len(result.basics)} BASICs parsed"

    return await source_checks(probe, args.dot, fetch)


if __name__ == "__main__":
    main(checks, service="csa", env_prefix="FMCSA_CSA_")
