"""The csa source's configuration: `FMCSA_CSA_<FIELD>` in the environment (shared fields keep `FMCSA_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, HttpUrl, SecretStr
from pydantic_settings import SettingsConfigDict

from fmcsa_source_kit.guard import DropGuardSettings
from fmcsa_source_kit.pacing import PACE_NOTE
from fmcsa_source_kit.settings import SourceSettings

QCMOBILE_URL = "https://mobile.fmcsa.dot.gov/qc/services"
"""The real FMCSA QCMobile API root; `up`, the tests and the benchmarks point `base_url` at the sandbox."""
DATAHUB_URL = "https://data.transportation.gov"
SMS_DATASET = "8mt8-2mdr"


class Settings(DropGuardSettings, SourceSettings):
    """The CSA source's configuration; every field has a working default.

    Only `web_key` is needed against the real QCMobile API (without it every request is answered
    `not_configured`).
    """

    model_config = SettingsConfigDict(env_prefix="FMCSA_CSA_")
    SOURCE: ClassVar[str] = "csa"

    base_url: HttpUrl = Field(
        HttpUrl(QCMOBILE_URL),
        description="QCMobile root (`.../qc/services`); the sandbox's `/qc/services` in up and tests.",
    )
    web_key: SecretStr | None = Field(
        None,
        description="QCMobile webKey (free, from the QCMobile developer site). Unset: warn once, "
        "answer every request `not_configured`.",
    )
    rate_per_s: float = Field(
        2.0,
        gt=0,
        le=50,
        description="Ceiling on QCMobile calls per second (a sync is two calls)." + PACE_NOTE,
    )
    publication_url: HttpUrl = Field(
        HttpUrl(DATAHUB_URL),
        description="Socrata host publishing the SMS run (DataHub); its dataset metadata says when BASICs "
        "may have changed.",
    )
    publication_dataset: str = Field(
        SMS_DATASET,
        pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$",
        description="Socrata dataset id whose `rowsUpdatedAt` marks a new SMS run (SMS Input - Violation).",
    )
    publication_check_s: float = Field(
        300.0,
        ge=0,
        description="Seconds the SMS dataset's `rowsUpdatedAt` (one metadata call) is trusted before it is "
        "asked again; a carrier fetched since the newest publication is not fetched again (SourceSynced "
        "`checked_unchanged`). 0 turns the check off: every sync makes both calls.",
    )
