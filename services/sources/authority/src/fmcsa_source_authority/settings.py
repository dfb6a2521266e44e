"""The authority source's configuration: `FMCSA_AUTHORITY_<FIELD>` in the environment (shared fields keep
`FMCSA_`). Two upstreams: QCMobile (webKey required) and DataHub's Socrata (app token optional).
"""

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
"""The real DataHub (Socrata) host of FMCSA's Licensing and Insurance datasets."""
INSURANCE_DATASET = "qh9u-swkp"
"""ActPendInsur: active and pending insurance filings, one row per filing."""
DAILY_DIFFERENCES = "dm5j-zc6c,x96h-evps,nakq-58th,e67p-xyd5"
"""FMCSA's Motus daily difference datasets (AuthHist, Insur, Carrier, RevokeSuspend): ids from public code
that reads them, not from FMCSA documentation (README, "Daily difference gate")."""


class Settings(DropGuardSettings, SourceSettings):
    """The authority source's configuration; every field has a working default.

    Only `web_key` is needed against the real QCMobile API (without it every request is answered
    `not_configured`); without `app_token` DataHub is read anonymously (Socrata's shared pool).
    """

    model_config = SettingsConfigDict(env_prefix="FMCSA_AUTHORITY_")
    SOURCE: ClassVar[str] = "authority"

    base_url: HttpUrl = Field(
        HttpUrl(QCMOBILE_URL),
        description="QCMobile root (`.../qc/services`); the sandbox's `/qc/services` in up and tests.",
    )
    web_key: SecretStr | None = Field(
        None,
        description="QCMobile webKey (the csa source's key works). Unset: warn once, answer every request "
        "`not_configured`.",
    )
    datahub_base_url: HttpUrl = Field(
        HttpUrl(DATAHUB_URL),
        description="DataHub (Socrata) host of the insurance dataset; the sandbox in up.",
    )
    insurance_dataset: str = Field(
        INSURANCE_DATASET,
        pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$",
        description="Socrata dataset id of the insurance filings (ActPendInsur: active and pending).",
    )
    app_token: SecretStr | None = Field(
        None, description="Socrata app token, sent as X-App-Token; unset or empty: anonymous (shared pool)."
    )
    rate_per_s: float = Field(
        2.0,
        gt=0,
        le=50,
        description="Ceiling on QCMobile calls per second (a sync is four)." + PACE_NOTE,
    )
    datahub_rate_per_s: float = Field(
        2.0, gt=0, le=50, description="Ceiling on DataHub calls per second (a sync is one)." + PACE_NOTE
    )
    call_timeout_s: float = Field(
        60.0, gt=0, description="Seconds one whole call may take, body included (a trickle cannot hold it)."
    )
    publication_period_s: float = Field(
        86400.0,
        ge=0,
        description="FMCSA publishes authority and insurance daily, and neither QCMobile nor the insurance "
        "dataset's per-carrier query says when a carrier changed: a carrier fetched successfully within "
        "the current period of this many seconds (counted from midnight UTC) is not fetched again "
        "(SourceSynced `checked_unchanged`, no call). 0 turns it off: every sync calls. Unused while "
        "the daily difference gate is on.",
    )
    daily_difference: bool = Field(
        True,
        description="The daily difference gate: a carrier is fetched only when never fetched, when a daily "
        "difference publication read since its last fetch lists it, when the gate cannot vouch for the time "
        "since (a check failed or a publication may have been missed) or after `full_refresh_s`; otherwise "
        "SourceSynced `checked_unchanged`, no QCMobile call. Replaces the publication period while on.",
    )
    daily_difference_datasets: str = Field(
        DAILY_DIFFERENCES,
        pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}(,[a-z0-9]{4}-[a-z0-9]{4})*$",
        description="Comma-separated Socrata ids of the daily difference datasets the gate reads on DataHub "
        "(Motus AuthHist, Insur, Carrier, RevokeSuspend).",
    )
    daily_difference_check_s: float = Field(
        300.0,
        gt=0,
        description="Seconds between two checks of the daily difference datasets' metadata (one DataHub call "
        "each; a new publication is then read whole): how long a new publication may go unseen.",
    )
    daily_difference_max_gap_s: float = Field(
        43200.0,
        gt=0,
        description="A gap longer than this between two successful checks may hide a publication (they come "
        "a day apart): the gate's watch begins again and every carrier fetched before is fetched.",
    )
    full_refresh_s: float = Field(
        604800.0,
        gt=0,
        description="The gate's safety net: a carrier whose last successful fetch is older than this is "
        "fetched whatever the daily differences say (what they do not cover: the carrier record's other "
        "fields, `/oos` orders).",
    )

    def daily_difference_ids(self) -> list[str]:
        return self.daily_difference_datasets.split(",")
