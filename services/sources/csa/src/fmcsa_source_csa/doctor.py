"""`python -m fmcsa_source_csa.doctor`: the csa source's part of `./fmcsa doctor`.

From the settings the service would use: the QCMobile host resolves and answers over verified TLS,
the webKey is accepted and the answer parses (one carrier: `/carriers/{dot}` and `/basics`, through
the service's own client and parsers, no retries), the rate-limit headers and `Date` it sends, and
the store. Without a webKey nothing is sent. Prints JSON rows (fmcsa_runtime.doctor).
"""

from __future__ import annotations

import argparse

import httpx

from fmcsa_runtime.doctor import (
    Check,
    KeyAdvice,
    Outcome,
    Status,
    answer_checks,
    capturing_client,
    default_dot,
    main,
    probe_host,
    store_check,
)
from fmcsa_runtime.failures import Failure
from fmcsa_source_csa.settings import Settings
from fmcsa_source_csa.upstream import QCMobileClient

KEY = KeyAdvice(
    "FMCSA_CSA_WEB_KEY",
    rejected="QCMobile does not know this webKey: copy it again from 'My WebKeys' at "
    "https://mobile.fmcsa.dot.gov/QCDevsite (sign in with Login.gov) into FMCSA_CSA_WEB_KEY",
)


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    base = str(settings.base_url)
    rows: list[Check] = []
    key = settings.web_key.get_secret_value() if settings.web_key is not None else ""
    if not key:
        rows.append(
            Check(
                "csa: key",
                Status.SKIP,
                "FMCSA_CSA_WEB_KEY is not set: the csa source answers every sync not_configured",
                "get a free webKey at https://mobile.fmcsa.dot.gov/QCDevsite and set FMCSA_CSA_WEB_KEY",
            )
        )
    else:
        probed, reachable = await probe_host(
            "csa", base, "FMCSA_CSA_BASE_URL", timeout_s=settings.connect_timeout_s
        )
        rows += probed
        if reachable:
            dot = args.dot or default_dot(base)
            responses: list[httpx.Response] = []
            timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
            async with capturing_client(responses, timeout=timeout) as http:
                client = QCMobileClient.from_settings(
                    settings.model_copy(update={"inline_retries": 0}), http=http
                )
                result = await client.fetch(dot)
            headers = responses[-1].headers if responses else None
            if isinstance(result, Failure):
                outcome = Outcome(result, "", headers)
            else:
                outcome = Outcome(None, f"carrier and {len(result.basics)} BASICs parsed", headers)
            rows += answer_checks("csa", dot, outcome, KEY, base_setting="FMCSA_CSA_BASE_URL")
    rows.append(await store_check("csa: store", settings.resolved_database_url(), "FMCSA_CSA_DATABASE_URL"))
    return rows


if __name__ == "__main__":
    main(checks, service="csa", env_prefix="FMCSA_CSA_")
