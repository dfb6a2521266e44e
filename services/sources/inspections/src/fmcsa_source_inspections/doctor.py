"""`python -m fmcsa_source_inspections.doctor`: the inspections source's part of `./fmcsa doctor`.

From the settings the service would use: the SaferWebAPI host resolves and answers over verified TLS,
the API key is accepted and one snapshot parses (the service's own client and parser, no retries),
the rate-limit headers and `Date` it sends, and the store. Without a key nothing is sent. Prints JSON
rows (fmcsa_runtime.doctor).
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
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_inspections.upstream import SaferWebClient

KEY = KeyAdvice(
    "FMCSA_INSPECTIONS_API_KEY",
    rejected="SaferWebAPI refused this key (wrong key or lapsed plan): check your plan and key at "
    "https://saferwebapi.com and set FMCSA_INSPECTIONS_API_KEY",
)


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    base = str(settings.base_url)
    rows: list[Check] = []
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    if not key:
        rows.append(
            Check(
                "inspections: key",
                Status.SKIP,
                "FMCSA_INSPECTIONS_API_KEY is not set: the inspections source answers every sync "
                "not_configured",
                "SaferWebAPI keys come with a paid plan at https://saferwebapi.com; "
                "set FMCSA_INSPECTIONS_API_KEY",
            )
        )
    else:
        probed, reachable = await probe_host(
            "inspections", base, "FMCSA_INSPECTIONS_BASE_URL", timeout_s=settings.connect_timeout_s
        )
        rows += probed
        if reachable:
            dot = args.dot or default_dot(base)
            responses: list[httpx.Response] = []
            timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
            async with capturing_client(responses, base_url=base, timeout=timeout) as http:
                client = SaferWebClient.from_settings(
                    settings.model_copy(update={"inline_retries": 0}), http=http
                )
                result = await client.fetch(dot)
            headers = responses[-1].headers if responses else None
            if isinstance(result, Failure):
                outcome = Outcome(result, "", headers)
            else:
                outcome = Outcome(None, "snapshot parsed", headers)
            rows += answer_checks("inspections", dot, outcome, KEY, base_setting="FMCSA_INSPECTIONS_BASE_URL")
    rows.append(
        await store_check(
            "inspections: store", settings.resolved_database_url(), "FMCSA_INSPECTIONS_DATABASE_URL"
        )
    )
    return rows


if __name__ == "__main__":
    main(checks, service="inspections", env_prefix="FMCSA_INSPECTIONS_")
