"""The status projector's configuration: FMCSA_STATUS_<FIELD> in the environment (shared fields keep
their FMCSA_ names: FMCSA_NATS_URL, FMCSA_DATA_DIR, FMCSA_LOG_LEVEL, ...).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fmcsa_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """The status projector's configuration: FMCSA_STATUS_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="FMCSA_STATUS_", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        None,
        description="sqlite:///path or postgresql://...; unset: SQLite <data_dir>/status.sqlite3.",
    )
    batch_size: int = Field(500, ge=1, le=20_000, description="Most events folded in one transaction.")
    batch_wait_ms: int = Field(
        50, ge=0, le=10_000, description="Longest wait for a batch to fill once its first event arrived."
    )
    rebuild_batch_size: int = Field(
        2_000, ge=1, le=20_000, description="Events per transaction when rebuilding from the stream."
    )
    snapshot_interval_s: float = Field(
        3600.0,
        ge=0,
        description="Seconds between two snapshots of the store into the bus (0: none on a schedule; a"
        " snapshot is taken only when the position moved).",
    )
    snapshot_keep: int = Field(
        3, ge=1, le=100, description="Snapshots kept in the bucket; older ones are retired after each save."
    )
    retry_max_s: float = Field(
        5.0, gt=0, le=300, description="Longest pause before retrying after the store or the bus failed."
    )

    def resolved_database_url(self) -> str:
        return self.database_url or self.sqlite_url("status")
