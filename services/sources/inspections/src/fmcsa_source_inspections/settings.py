"""The inspections source's configuration: `FMCSA_INSPECTIONS_<FIELD>` in the environment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field, HttpUrl, SecretStr
from pydantic_settings import SettingsConfigDict

from fmcsa_source_kit.pacing import PACE_NOTE
from fmcsa_source_kit.settings import SourceSettings

SAFERWEBAPI_URL = "https://saferwebapi.com"
DATAHUB_URL = "https://data.transportation.gov"
"""The real DataHub (Socrata) host of FMCSA's daily bulk files."""
_DATASET_ID = r"^[a-z0-9]{4}-[a-z0-9]{4}$"


class Settings(SourceSettings):
    """SaferWebAPI client, store and retry settings. Every field has a working default; without
    `api_key` the service still starts and answers every request with `not_configured`.
    """

    model_config = SettingsConfigDict(env_prefix="FMCSA_INSPECTIONS_", extra="ignore", populate_by_name=True)
    SOURCE: ClassVar[str] = "inspections"

    base_url: HttpUrl = Field(
        HttpUrl(SAFERWEBAPI_URL),
        description="SaferWebAPI root (the real host); the sandbox's URL in `up` and the tests.",
    )
    api_key: SecretStr | None = Field(
        None, description="SaferWebAPI key, sent as the `x-api-key` header. Unset: answer not_configured."
    )
    rate_per_s: float = Field(1.0, gt=0, description="Ceiling on SaferWebAPI calls per second." + PACE_NOTE)
    burst_headroom_s: float = Field(
        0.25,
        ge=0,
        le=0.5,
        description=(
            "Seconds' worth of calls the rate limit holds back from its one-second burst: a call may arrive "
            "that much late against the one before without a 429 from an upstream counting a bucket of one "
            "second's worth at the same rate (see fmcsa_source_kit.pacing). Costs no long-run rate."
        ),
    )
    backoff_initial_s: float = Field(
        0.5,
        gt=0,
        description="First backoff ceiling; doubles per retry, full jitter, when no Retry-After came.",
    )
    rate_limit_wait_s: float = Field(
        60.0, ge=0, description="Wait after a 429 that carries no Retry-After header."
    )
    oos_rate_change_points: float = Field(
        5.0,
        gt=0,
        le=100,
        description=(
            "Percentage points a US vehicle or driver out-of-service rate must move (either way) between "
            "two snapshots to publish an `oos_rate_changed` change fact; smaller moves are not changes."
        ),
    )
    publication_period_s: float = Field(
        86400.0,
        ge=0,
        description="SaferWebAPI mirrors SAFER, whose figures move over days (a daily publication at "
        "most), and offers no change signal or conditional request: a carrier fetched successfully within "
        "the current period of this many seconds (counted from midnight UTC) is not fetched again "
        "(SourceSynced `checked_unchanged`, no call). 0 turns it off: every sync calls.",
    )
    change_gate: bool = Field(
        True,
        description="The change gate: a carrier is fetched only when never fetched, when DataHub's Vehicle "
        "Inspection or Crash File lists it since its last fetch (a row new or changed, or one leaving the "
        "24-month window), when the gate cannot vouch for the time since (a check failed or is too old) or "
        "after `full_refresh_s`; otherwise SourceSynced `checked_unchanged`, no SaferWebAPI call. Replaces "
        "the publication period while on.",
    )
    inspection_file: str = Field(
        "fx4q-ay7w",
        pattern=_DATASET_ID,
        description="Socrata id of DataHub's Vehicle Inspection File (one row per inspection, `insp_date`).",
    )
    crash_file: str = Field(
        "aayw-vxb3",
        pattern=_DATASET_ID,
        description="Socrata id of DataHub's Crash File (one row per crash, `report_date`).",
    )
    datahub_base_url: HttpUrl = Field(
        HttpUrl(DATAHUB_URL),
        description="DataHub (Socrata) host of the files the change gate reads; the sandbox in up.",
    )
    change_gate_check_s: float = Field(
        300.0,
        gt=0,
        description="Seconds between two checks of the change gate (a metadata call per file; the rows "
        "changed since and, once a day, those leaving the window, when there are): how long a change may go "
        "unseen.",
    )
    change_gate_max_gap_s: float = Field(
        43200.0,
        gt=0,
        description="A last successful check older than this makes the gate blind (every carrier fetched); "
        "a gap this long between two checks restarts its watch (every carrier fetched before is fetched).",
    )
    full_refresh_s: float = Field(
        604800.0,
        gt=0,
        description="The gate's safety net: a carrier whose last successful fetch is older than this is "
        "fetched whatever the files say (what they do not cover: the safety rating, census fields).",
    )

    app_token: SecretStr | None = Field(
        None, description="Socrata app token, sent as X-App-Token; unset or empty: anonymous (shared pool)."
    )

    def gate_files(self) -> dict[str, str]:
        """The change gate's files and the date column of each."""
        return {self.inspection_file: "insp_date", self.crash_file: "report_date"}

    def gate_timing(self) -> dict[str, Any]:
        """The change gate's files, periods and retry ceiling, as `InspectionsGate` takes them."""
        return {
            "datasets": self.gate_files(),
            "check_s": self.change_gate_check_s,
            "max_gap": timedelta(seconds=self.change_gate_max_gap_s),
            "full_refresh": timedelta(seconds=self.full_refresh_s),
            "retry_after_max_s": self.retry_after_max_s,
        }
