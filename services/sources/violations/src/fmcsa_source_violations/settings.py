"""The violations source's configuration: `FMCSA_VIOLATIONS_<FIELD>` in the environment."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, HttpUrl, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from fmcsa_source_kit.guard import DropGuardSettings
from fmcsa_source_kit.pacing import PACE_NOTE
from fmcsa_source_kit.settings import SourceSettings

SOCRATA_URL = "https://data.transportation.gov"
VIOLATIONS_DATASET = "8mt8-2mdr"


class Settings(DropGuardSettings, SourceSettings):
    """Socrata client, paging, retry and store settings; every field has a working default.

    No app token is a valid configuration: reads then draw on Socrata's shared anonymous pool.
    """

    model_config = SettingsConfigDict(env_prefix="FMCSA_VIOLATIONS_", extra="ignore", populate_by_name=True)
    SOURCE: ClassVar[str] = "violations"

    base_url: HttpUrl = Field(
        HttpUrl(SOCRATA_URL), description="Socrata host serving the dataset; the sandbox in up and tests."
    )
    dataset: str = Field(
        VIOLATIONS_DATASET,
        pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$",
        description="Socrata dataset id of SMS Input - Violation.",
    )
    app_token: SecretStr | None = Field(
        None,
        description="Socrata app token, sent as X-App-Token; unset or empty means anonymous (shared pool).",
    )
    rate_per_s: float = Field(
        2.0, gt=0, description="Ceiling on Socrata calls per second (one per page)." + PACE_NOTE
    )
    page_size: int = Field(
        1000, ge=1, le=50000, description="Rows per page ($limit); SODA 2.0 caps it at 50000."
    )
    max_pages: int = Field(
        100, ge=1, description="Pages read per carrier before the read fails as invalid_response."
    )
    freshness_check_s: float = Field(
        300.0,
        ge=0,
        description="Seconds the dataset's `rowsUpdatedAt` (one metadata call) is trusted before it is asked "
        "again; a carrier whose held data is at least that recent is not read again (SourceSynced "
        "`checked_unchanged`). 0 turns the check off: every sync reads every page.",
    )

    delta_window_s: float = Field(
        0.1,
        ge=0,
        description="Seconds a carrier that needs only a delta waits for others to share one batched query "
        "(`dot_number IN (...) AND :updated_at > mark`); 0 turns delta reads off: every sync reads the "
        "carrier in full. Batches hold at most the requests in flight (`CONCURRENCY`).",
    )
    delta_url_budget: int = Field(
        6000,
        ge=200,
        description="Most characters of a batched query's URL-encoded `$where`; a longer list is cut into "
        "more queries (Socrata answers 414 to long URLs).",
    )
    delta_max_carriers: int = Field(
        100, ge=1, description="Most carriers in one batched delta query (docs/upstreams.md 4.2: about 100)."
    )
    reconcile_days: float = Field(
        31.0,
        gt=0,
        description="Days after which a carrier's next sync is a full read (the only kind that ages rows "
        "out); a carrier also gets one after it has seen a new dataset publication, and when never read "
        "in full.",
    )

    @field_validator("app_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            return None
        return value
