"""Which upstreams the sources talk to, and where their credentials come from.

`./fmcsa up` (default `--upstream sandbox`) points the sources at the sandbox it starts; `--upstream
real` starts no sandbox and points them at the real hosts (docs/upstreams.md). Either way the
settings come from the environment and, beneath it, from the dotenv file named by `FMCSA_ENV_FILE`
(owner-only, e.g. mode 0600; the environment wins over the file). `./fmcsa doctor` resolves them the
same way. Values read here are passed to the service processes only: never printed or logged.
"""

from __future__ import annotations

import enum
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values


class Upstream(enum.StrEnum):
    SANDBOX = "sandbox"
    REAL = "real"


SANDBOX_WEB_KEY = "sandbox-webkey"
SANDBOX_APP_TOKEN = "sandbox-app-token"
SANDBOX_API_KEY = "sandbox-api-key"


@dataclass(frozen=True)
class SourceUpstream:
    """One upstream of a source: its real host, where the sandbox serves it, how it is called and where
    its credential goes. The only table of the CLI a new source adds rows to (the launcher and the doctor
    start `fmcsa_source_<key>` for every `SourceKey`).
    """

    source: str
    base_url_setting: str
    real_base_url: str
    key_setting: str
    key_required: bool
    """False for Socrata: without an app token it serves anonymous reads from a shared pool."""
    sandbox_path: str
    """The path under the sandbox's URL that stands in for `real_base_url`."""
    sandbox_key: str
    """The credential the sandbox accepts for this upstream."""
    anonymous_rate_setting: str | None = None
    """With `--upstream real` and no key: this rate setting defaults to `ANONYMOUS_SOCRATA_RATE_PER_S`."""


QCMOBILE_URL = "https://mobile.fmcsa.dot.gov/qc/services"
DATAHUB_URL = "https://data.transportation.gov"
SOURCES: tuple[SourceUpstream, ...] = (
    SourceUpstream(
        "csa", "FMCSA_CSA_BASE_URL", QCMOBILE_URL, "FMCSA_CSA_WEB_KEY", True, "/qc/services", SANDBOX_WEB_KEY
    ),
    SourceUpstream(
        "violations",
        "FMCSA_VIOLATIONS_BASE_URL",
        DATAHUB_URL,
        "FMCSA_VIOLATIONS_APP_TOKEN",
        False,
        "",
        SANDBOX_APP_TOKEN,
        anonymous_rate_setting="FMCSA_VIOLATIONS_RATE_PER_S",
    ),
    SourceUpstream(
        "inspections",
        "FMCSA_INSPECTIONS_BASE_URL",
        "https://saferwebapi.com",
        "FMCSA_INSPECTIONS_API_KEY",
        True,
        "",
        SANDBOX_API_KEY,
    ),
    SourceUpstream(
        "authority",
        "FMCSA_AUTHORITY_BASE_URL",
        QCMOBILE_URL,
        "FMCSA_AUTHORITY_WEB_KEY",
        True,
        "/qc/services",
        SANDBOX_WEB_KEY,
    ),
    SourceUpstream(
        "authority",
        "FMCSA_AUTHORITY_DATAHUB_BASE_URL",
        DATAHUB_URL,
        "FMCSA_AUTHORITY_APP_TOKEN",
        False,
        "",
        SANDBOX_APP_TOKEN,
        anonymous_rate_setting="FMCSA_AUTHORITY_DATAHUB_RATE_PER_S",
    ),
    SourceUpstream(  # the change gate's bulk files (a few calls a day: no anonymous rate to lower)
        "inspections",
        "FMCSA_INSPECTIONS_DATAHUB_BASE_URL",
        DATAHUB_URL,
        "FMCSA_INSPECTIONS_APP_TOKEN",
        False,
        "",
        SANDBOX_APP_TOKEN,
    ),
)
"""The same URLs are each source's settings default (tests/system/test_real_upstreams.py checks it)."""


ANONYMOUS_SOCRATA_RATE_PER_S = "0.2"
"""`up --upstream real` without an app token: 720 calls an hour at most, under the shared pool's unpublished
limit (third parties quote 1,000 an hour); with a token the settings default (2/s) stands."""


class EnvFileError(Exception):
    """The file named by FMCSA_ENV_FILE cannot be used; the message says why (never a value in it)."""


def read_env_file(environ: Mapping[str, str]) -> dict[str, str]:
    """The `FMCSA_*` settings of the dotenv file named by `FMCSA_ENV_FILE`, or {} when it is unset.

    Refused unless the file is a regular file that only its owner may read or write (0600 or 0400):
    it holds API keys. Only `FMCSA_*` names are accepted (a file cannot set PATH or PYTHONPATH for the
    services). The messages name the file and the offending names, never a value.
    """
    name = environ.get("FMCSA_ENV_FILE", "").strip()
    if not name:
        return {}
    path = Path(name).expanduser()
    try:
        info = path.stat()
    except OSError as error:
        raise EnvFileError(f"FMCSA_ENV_FILE={path}: cannot read it ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise EnvFileError(f"FMCSA_ENV_FILE={path}: not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise EnvFileError(
            f"FMCSA_ENV_FILE={path}: mode {mode:04o} lets other users read it; it holds API keys. "
            f"Run: chmod 600 {path}"
        )
    try:
        values = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as error:
        raise EnvFileError(f"FMCSA_ENV_FILE={path}: cannot read it ({type(error).__name__})") from None
    foreign = sorted(key for key in values if not key.startswith("FMCSA_") or key == "FMCSA_ENV_FILE")
    if foreign:
        raise EnvFileError(
            f"FMCSA_ENV_FILE={path}: only FMCSA_* settings belong there, found {', '.join(foreign)}"
        )
    return {key: value for key, value in values.items() if value is not None}


def settings_environment(environ: Mapping[str, str], upstream: Upstream) -> dict[str, str]:
    """The `FMCSA_*` settings the user gives the services: the env file's, then the environment's on top;
    with `--upstream real`, each source's real base URL unless one of those sets it.
    """
    given = read_env_file(environ)
    given |= {key: value for key, value in environ.items() if key.startswith("FMCSA_")}
    given.pop("FMCSA_ENV_FILE", None)
    if upstream is Upstream.REAL:
        for source in SOURCES:
            given.setdefault(source.base_url_setting, source.real_base_url)
            if source.anonymous_rate_setting and not given.get(source.key_setting, "").strip():
                # anonymous Socrata reads share a per-IP pool: keep well under 1,000 requests an hour
                given.setdefault(source.anonymous_rate_setting, ANONYMOUS_SOCRATA_RATE_PER_S)
    return given


def credential_summary(settings: Mapping[str, str]) -> list[str]:
    """One line per source for `up --upstream real`: its host and whether its key is set (never the key)."""
    lines = []
    for source in SOURCES:
        url = settings.get(source.base_url_setting, source.real_base_url)
        if settings.get(source.key_setting, "").strip():
            state = f"{source.key_setting} set"
        elif source.key_required:
            state = f"{source.key_setting} not set: every {source.source} sync answers not_configured"
        else:
            state = f"{source.key_setting} not set: anonymous reads (shared per-IP pool)"
        lines.append(f"  {source.source + ':':13} {url} ({state})")
    return lines


def keys_going_to_the_sandbox(settings: Mapping[str, str]) -> list[str]:
    """Warnings for `up --upstream sandbox`: a key set for a source that still calls the sandbox (which
    accepts only its own key, so that source would answer not_configured). Names settings, never values.
    """
    return [
        f"note: {source.key_setting} is set but {source.source} calls the sandbox, which accepts only its "
        f"own key; for the real host use --upstream real or set {source.base_url_setting}"
        for source in SOURCES
        if settings.get(source.key_setting, "").strip() and source.base_url_setting not in settings
    ]
