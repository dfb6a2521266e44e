"""`python -m fmcsa_source_violations.doctor`: the violations source's part of `./fmcsa doctor`.

From the settings the service would use: the Socrata host resolves and answers over verified TLS,
the app token (if set) is accepted and one small page of the dataset parses (the service's own client
and parser), the rate-limit headers and `Date` it sends, and the store. Without a token the call is
anonymous, as the service's would be. Prints JSON rows (fmcsa_runtime.doctor).
"""

from __future__ import annotations

import argparse

import httpx

from fmcsa_runtime.doctor import (
    Check,
    KeyAdvice,
    Outcome,
    answer_checks,
    capturing_client,
    default_dot,
    main,
    probe_host,
    store_check,
)
from fmcsa_runtime.failures import Failure
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
    base = str(settings.base_url)
    rows, reachable = await probe_host(
        "violations", base, "FMCSA_VIOLATIONS_BASE_URL", timeout_s=settings.connect_timeout_s
    )
    if reachable:
        dot = args.dot or default_dot(base)
        responses: list[httpx.Response] = []
        timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        probe = settings.model_copy(update={"page_size": PROBE_ROWS, "inline_retries": 0})
        async with capturing_client(responses, timeout=timeout) as http:
            client = SocrataClient.from_settings(probe, http=http)
            result = await client.first_page(dot)
        headers = responses[-1].headers if responses else None
        anonymous = settings.app_token is None
        if isinstance(result, Failure):
            outcome = Outcome(result, "", headers, anonymous=anonymous)
        else:
            outcome = Outcome(
                None, f"{len(result.rows)} rows parsed (asked for {PROBE_ROWS})", headers, anonymous
            )
        rows += answer_checks("violations", dot, outcome, KEY, base_setting="FMCSA_VIOLATIONS_BASE_URL")
    rows.append(
        await store_check(
            "violations: store", settings.resolved_database_url(), "FMCSA_VIOLATIONS_DATABASE_URL"
        )
    )
    return rows


if __name__ == "__main__":
    main(checks, service="violations", env_prefix="FMCSA_VIOLATIONS_")
