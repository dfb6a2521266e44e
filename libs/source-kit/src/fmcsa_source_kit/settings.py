"""What every source service is configured with besides its upstream's address, credential and rate:
bounds on the calls, the one retry policy (`fmcsa_source_kit.upstream.RetryPolicy`), the attempts a
request gets and its store. A source's `Settings` subclasses this with its own `env_prefix` and
`SOURCE`, so every variable is `FMCSA_<SOURCE>_<FIELD>` and means the same in every source.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from fmcsa_runtime.settings import ServiceSettings


class SourceSettings(ServiceSettings):
    SOURCE: ClassVar[str]
    """The source key; names the default SQLite file `<data_dir>/<source>.sqlite3`."""

    concurrency: int = Field(8, ge=1, le=256, description="Most calls in flight at once, per upstream host.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to open a connection.")
    read_timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for each read of an answer.")
    inline_retries: int = Field(
        2, ge=0, le=10, description="In-process retries of a retryable failure whose wait is short."
    )
    inline_wait_max_s: float = Field(
        5.0, ge=0, description="Longest wait spent in process; a longer one goes back to the bus as a delay."
    )
    retry_after_max_s: float = Field(
        3600.0,
        gt=0,
        description="Ceiling on any wait an upstream asks for (`Retry-After`) and on the delay of a retry "
        "handed back to the bus.",
    )
    max_attempts: int = Field(5, ge=1, description="Deliveries before a retryable failure is final.")
    database_url: str | None = Field(
        None,
        description="sqlite:///path or postgresql://user@host/db; unset: the SQLite file "
        "`<data_dir>/<source>.sqlite3`.",
    )

    def resolved_database_url(self) -> str:
        """Return `database_url`, else the SQLite file `<source>.sqlite3` under the data folder."""
        return self.database_url or self.sqlite_url(self.SOURCE)
