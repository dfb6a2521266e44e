"""The sandbox's configuration: `FMCSA_SANDBOX_<FIELD>` in the environment (shared fields keep `FMCSA_`).

Every fault, latency and rate field here is also a run-time knob: `PUT /_sandbox/faults` takes the same
names in lower case (`RUNTIME_KNOBS`), so a test or a benchmark can change them without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from fmcsa_runtime.settings import ServiceSettings

SOURCES: tuple[str, ...] = ("csa", "violations", "inspections", "authority")
"""The four sources the sandbox imitates: QCMobile (carrier and BASICs), Socrata `8mt8-2mdr`, SaferWebAPI, and
the authority source's QCMobile paths with the Socrata insurance dataset `qh9u-swkp`."""

FAULT_KINDS: tuple[str, ...] = ("hang", "5xx", "429", "malformed")
"""Fault probabilities every source has (`<source>_p_<kind>`); violations also has `p_202`."""


def _rate(source: str) -> Any:
    return Field(
        0.0,
        ge=0,
        description=f"Leaky-bucket rate limit of the {source} upstream in requests/s (capacity one second's "
        "worth); a request that would overflow it gets 429. 0 = unlimited.",
    )


def _latency(source: str) -> Any:
    return Field(0.0, ge=0, le=60_000, description=f"Base latency added to every {source} answer, in ms.")


def _p(source: str, what: str) -> Any:
    article = "an" if source[0] in "aeiou" else "a"
    return Field(0.0, ge=0, le=1, description=f"Probability that {article} {source} request {what}.")


class Settings(ServiceSettings):
    """The sandbox upstream's configuration. Every field has a working default: `python -m fmcsa_sandbox`
    serves healthy data on 127.0.0.1:8900 with no limits and no faults. Of the shared `FMCSA_*` fields
    only `FMCSA_LOG_LEVEL` and `FMCSA_LOG_JSON` apply here.
    """

    model_config = SettingsConfigDict(env_prefix="FMCSA_SANDBOX_")

    host: str = Field("127.0.0.1", description="Address to listen on (loopback by default).")
    port: int = Field(8900, ge=0, le=65535, description="Port to listen on; 0 picks a free one.")
    qcmobile_web_key: SecretStr = Field(
        SecretStr("sandbox-webkey"), description="The one QCMobile `webKey` accepted; any other gets 404."
    )
    socrata_app_token: SecretStr = Field(
        SecretStr("sandbox-app-token"),
        description="The Socrata app token accepted in `X-App-Token` or `$$app_token`; another token gets "
        "403, no token is served (the anonymous pool).",
    )
    saferweb_api_key: SecretStr = Field(
        SecretStr("sandbox-api-key"),
        description="The SaferWebAPI `x-api-key` accepted; missing or other: 401.",
    )
    saferweb_lapsed_keys: str = Field(
        "", description="Comma-separated SaferWebAPI keys answered 403 (a lapsed plan)."
    )
    csa_rate_per_s: float = _rate("csa")
    violations_rate_per_s: float = _rate("violations")
    inspections_rate_per_s: float = _rate("inspections")
    authority_rate_per_s: float = _rate("authority")
    retry_after: bool = Field(
        True, description="Send `Retry-After` (whole seconds, rounded up) on rate-limit and fault 429s."
    )
    csa_latency_ms: float = _latency("csa")
    violations_latency_ms: float = _latency("violations")
    inspections_latency_ms: float = _latency("inspections")
    authority_latency_ms: float = _latency("authority")
    csa_p_5xx: float = _p("csa", "gets a 5xx (500 `{}`, 502 empty or 503 HTML)")
    csa_p_429: float = _p("csa", "gets a 429 (`Retry-After: 1` on half of them)")
    csa_p_malformed: float = _p("csa", "gets its body cut in half (truncated JSON)")
    csa_p_hang: float = _p("csa", "hangs for `hang_s` before its answer")
    violations_p_5xx: float = _p("violations", "gets a 5xx (500 `{}`, 502 empty or 503 HTML)")
    violations_p_429: float = _p("violations", "gets a 429 (`Retry-After: 1` on half of them)")
    violations_p_malformed: float = _p("violations", "gets its body cut in half (truncated JSON)")
    violations_p_hang: float = _p("violations", "hangs for `hang_s` before its answer")
    violations_p_202: float = _p("violations", "gets 202 and an empty body (Socrata still computing)")
    inspections_p_5xx: float = _p("inspections", "gets a 5xx (500 `{}`, 502 empty or 503 HTML)")
    inspections_p_429: float = _p("inspections", "gets a 429 (`Retry-After: 1` on half of them)")
    inspections_p_malformed: float = _p("inspections", "gets its body cut in half (truncated JSON)")
    inspections_p_hang: float = _p("inspections", "hangs for `hang_s` before its answer")
    authority_p_5xx: float = _p("authority", "gets a 5xx (500 `{}`, 502 empty or 503 HTML)")
    authority_p_429: float = _p("authority", "gets a 429 (`Retry-After: 1` on half of them)")
    authority_p_malformed: float = _p("authority", "gets its body cut in half (truncated JSON)")
    authority_p_hang: float = _p("authority", "hangs for `hang_s` before its answer")
    hang_s: float = Field(
        300.0, ge=0, description="How long a hang lasts (fault or DOT 99300001 / 99300002), in seconds."
    )
    data_version: int = Field(
        1, ge=1, le=10_000, description="Data version at start; `POST /_sandbox/bump` adds one."
    )
    webhook_secret: SecretStr = Field(
        SecretStr("sandbox-webhook-secret"),
        description="The secret the webhook receiver (`/_sandbox/webhooks/*`) verifies signatures with.",
    )
    state_file: Path | None = Field(
        None,
        description='Where to write {"url": ..., "pid": ...} at start (removed at exit), for '
        "`./fmcsa sandbox bump`.",
    )

    @model_validator(mode="after")
    def _probabilities_fit(self) -> Settings:
        for source in SOURCES:
            total = sum(float(getattr(self, name)) for name in fault_names(source))
            if total > 1.0 + 1e-9:
                raise ValueError(f"{source} fault probabilities add up to {total} (more than 1)")
        return self

    def lapsed_keys(self) -> frozenset[str]:
        """The SaferWebAPI keys to answer 403, without blanks."""
        return frozenset(k.strip() for k in self.saferweb_lapsed_keys.split(",") if k.strip())

    def runtime_knobs(self) -> dict[str, float | bool]:
        """The start values of every knob `PUT /_sandbox/faults` can change."""
        return {name: getattr(self, name) for name in RUNTIME_KNOBS}


def fault_names(source: str) -> tuple[str, ...]:
    """The probability knobs of one source, in the order the dice test them."""
    extra = ("violations_p_202",) if source == "violations" else ()
    return (*(f"{source}_p_{kind}" for kind in FAULT_KINDS), *extra)


RUNTIME_KNOBS: tuple[str, ...] = (
    *(f"{source}_rate_per_s" for source in SOURCES),
    *(f"{source}_latency_ms" for source in SOURCES),
    *(name for source in SOURCES for name in fault_names(source)),
    "retry_after",
    "hang_s",
)
"""The settings that can change at run time, by their lower-case names."""
