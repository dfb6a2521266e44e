"""`./fmcsa doctor`: whether the services, as configured, can do their work.

Settings come as `up --upstream real` would give them (the environment over `FMCSA_ENV_FILE`; each
source's real host unless its base URL is set). Each service's own `python -m <package>.doctor` runs
as a process with those settings (the CLI imports no service) and prints its rows: for a source, its
host resolves and answers over verified TLS, its key is accepted, one cheap call for a known DOT
parses with the source's own parser, the rate-limit headers and `Date` of the answer, its store; for
status, notifier and gateway, their stores. The CLI adds NATS and prints one table. Exit 0 only when
no row failed; a source without a key is skipped (not configured), not failed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from fmcsa_cli.upstreams import EnvFileError, Upstream, read_env_file, settings_environment
from fmcsa_events.identifiers import SourceKey
from fmcsa_runtime.doctor import Check, Status, nats_check
from fmcsa_runtime.redaction import redact, register_secret

SERVICE_DOCTORS: tuple[tuple[str, str], ...] = (
    *((key.value, f"fmcsa_source_{key.value}.doctor") for key in SourceKey),
    ("status", "fmcsa_status.doctor"),
    ("notifier", "fmcsa_notifier.doctor"),
    ("gateway", "fmcsa_gateway.doctor"),
)
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
"""Settings whose values never appear in the output, whatever a check prints; of URLs, the password."""
WITHIN_S = 120.0
"""Bound on the whole run: each check has its own timeouts (the sources' connect and read timeouts)."""


def run(
    environ: Mapping[str, str], *, running_nats_url: Callable[[Path], str | None], dot: str | None = None
) -> tuple[list[Check], int]:
    """Every check's row and the exit status (0: every configured source usable, no row failed)."""
    try:
        settings = settings_environment(environ, Upstream.REAL)
    except EnvFileError as error:
        return [Check("settings", Status.FAIL, str(error), "fix FMCSA_ENV_FILE as the message says")], 1
    for name, value in settings.items():
        if name.endswith(SECRET_SUFFIXES):
            register_secret(value)
        elif name.endswith("_URL"):
            register_secret(_password(value))
    data_dir = Path(settings.get("FMCSA_DATA_DIR", ".fmcsa-data")).resolve()
    rows: list[Check] = []
    if environ.get("FMCSA_ENV_FILE", "").strip():
        count = len(read_env_file(environ))
        rows.append(Check("settings", Status.OK, f"FMCSA_ENV_FILE: {count} settings read (owner-only file)"))
    env = {k: v for k, v in environ.items() if not k.startswith("FMCSA_")} | settings
    env["FMCSA_DATA_DIR"] = str(data_dir)
    rows += _service_rows(env, dot)
    nats_url = settings.get("FMCSA_NATS_URL") or running_nats_url(data_dir)
    rows.append(asyncio.run(_nats_row(nats_url)))
    rows = [Check(row.name, row.status, redact(row.detail), redact(row.remedy)) for row in rows]
    return rows, 1 if any(row.status is Status.FAIL for row in rows) else 0


def _service_rows(env: Mapping[str, str], dot: str | None) -> list[Check]:
    """Run every service's doctor at once (each is mostly waiting on the network) and collect its rows."""
    extra = ["--dot", dot] if dot else []
    running = [
        (
            service,
            subprocess.Popen(
                [sys.executable, "-m", module, *extra],
                env=dict(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for service, module in SERVICE_DOCTORS
    ]
    rows: list[Check] = []
    for service, process in running:
        try:
            out, err = process.communicate(timeout=WITHIN_S)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            rows.append(
                Check(f"{service}: doctor", Status.FAIL, f"no verdict within {WITHIN_S:.0f} s", _RETRY)
            )
            continue
        parsed = _rows(out)
        if process.returncode != 0 or not parsed:
            last = (err.strip().splitlines() or ["(no output)"])[-1]
            rows.append(
                Check(f"{service}: doctor", Status.FAIL, f"the check itself failed: {last}"[:300], _RETRY)
            )
        rows += parsed
    return rows


_RETRY = "run it again; if it persists, report it with this line"


def _rows(out: str) -> list[Check]:
    rows = []
    for line in out.splitlines():
        try:
            rows.append(Check.from_json(line))
        except (ValueError, KeyError, TypeError):
            continue  # a stray line (a library's print): not a row
    return rows


async def _nats_row(url: str | None) -> Check:
    """NATS: FMCSA_NATS_URL if set, else the one a running `./fmcsa up` started on this data folder."""
    if not url:
        return Check(
            "nats",
            Status.SKIP,
            "FMCSA_NATS_URL not set and no ./fmcsa up running here: up starts its own nats-server",
        )
    return await nats_check(url)


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def table(rows: Sequence[Check]) -> str:
    """The rows as a plain text table: check, result, detail, remedy (no wrapping: greppable)."""
    header = ("check", "result", "detail", "remedy")
    cells = [header, *((row.name, row.status.value, row.detail, row.remedy) for row in rows)]
    widths = [max(len(cell[i]) for cell in cells) for i in range(3)]
    lines = []
    for cell in cells:
        lines.append("  ".join(cell[i].ljust(widths[i]) for i in range(3)) + "  " + cell[3])
    return "\n".join(line.rstrip() for line in lines)
