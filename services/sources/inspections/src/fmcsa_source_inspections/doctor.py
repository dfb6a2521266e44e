"""`python -m fmcsa_source_inspections.doctor`: the inspections source's part of `./fmcsa doctor`.

From the settings the service would use: the SaferWebAPI host resolves and answers over verified TLS,
the API key is accepted and one snapshot parses (the service's own client and parser, no retries),
the rate-limit headers and `Date` it sends, and the store; with the change gate on, each DataHub file it
watches answers its metadata. Without a key nothing is sent. Prints JSON rows (fmcsa_runtime.doctor).
"""

from __future__ import annotations

import argparse

import httpx

from fmcsa_events.bus import utc_now
from fmcsa_runtime.doctor import Check, main
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_inspections.upstream import SaferWebClient, datahub_client
from fmcsa_source_kit.doctor import Fetched, KeyAdvice, SourceProbe, gate_check, source_checks
from fmcsa_source_kit.failures import Failure

KEY = KeyAdvice(
    "FMCSA_INSPECTIONS_API_KEY",
    rejected="SaferWebAPI refused this key (wrong key or lapsed plan): check your plan and key at "
    "https://saferwebapi.com and set FMCSA_INSPECTIONS_API_KEY",
)


async def checks(args: argparse.Namespace) -> list[Check]:
    settings = Settings()
    base = str(settings.base_url)
    probe = SourceProbe.of(
        settings,
        base,
        KEY,
        credential=settings.api_key,
        missing_key=(
            "FMCSA_INSPECTIONS_API_KEY is not set: the inspections source answers every sync not_configured",
            "SaferWebAPI keys come with a paid plan at https://saferwebapi.com; "
            "set FMCSA_INSPECTIONS_API_KEY",
        ),
        client_base_url=base,
    )

    async def fetch(http: httpx.AsyncClient, dot: str) -> Fetched:
        client = SaferWebClient.from_settings(settings.model_copy(update={"inline_retries": 0}), http=http)
        result = await client.fetch(dot)
        return result if isinstance(result, Failure) else "snapshot parsed"

    rows = await source_checks(probe, args.dot, fetch)
    if settings.change_gate and probe.has_key:  # without a key every sync is not_configured anyway
        datahub = datahub_client(settings.model_copy(update={"inline_retries": 0}))
        try:
            rows.insert(
                -1,  # before the store's row
                await gate_check(
                    "inspections",
                    datahub,
                    settings.gate_files(),
                    retry_after_max_s=settings.retry_after_max_s,
                    switch="FMCSA_INSPECTIONS_CHANGE_GATE",
                    now=utc_now(),
                ),
            )
        finally:
            await datahub.aclose()
    return rows


if __name__ == "__main__":
    main(checks, service="inspections", env_prefix="FMCSA_INSPECTIONS_")
