"""`./fmcsa sandbox bump|stats`: drive the running sandbox upstream through its admin API.

The sandbox started by `./fmcsa up` writes `{"url": ..., "pid": ...}` to `FMCSA_SANDBOX_STATE_FILE`, which
`up` sets to `<FMCSA_DATA_DIR>/sandbox.json` (data folder default `./.fmcsa-data`). These commands read that
file (or `FMCSA_SANDBOX_STATE_FILE` when it is set, as `up` passes it on) and call the URL it names over
HTTP: the CLI never imports the sandbox. When there is no file, the file is unreadable or the sandbox does
not answer, they print why on stderr and exit 1; they never start a sandbox themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import typer

TIMEOUT_S = 5.0

sandbox_app = typer.Typer(
    no_args_is_help=True,
    help="Drive the running sandbox upstream: advance its data version, show its counters.",
)


class SandboxUnreachable(Exception):
    """No running sandbox could be found or asked; the message says why and what to do."""


def state_file(environ: Mapping[str, str]) -> Path:
    """Where the running sandbox wrote its URL: `FMCSA_SANDBOX_STATE_FILE` if set, else
    `<FMCSA_DATA_DIR or ./.fmcsa-data>/sandbox.json` (where `./fmcsa up` has it written).
    """
    if explicit := environ.get("FMCSA_SANDBOX_STATE_FILE"):
        return Path(explicit)
    return Path(environ.get("FMCSA_DATA_DIR", ".fmcsa-data")) / "sandbox.json"


def sandbox_url(path: Path) -> str:
    """The base URL a state file names; raises `SandboxUnreachable` when it is missing or malformed."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise SandboxUnreachable(
            f"no running sandbox: {path} does not exist (start one with ./fmcsa up, "
            "or point FMCSA_DATA_DIR at the data folder of the running one)"
        ) from None
    except (OSError, ValueError) as error:
        raise SandboxUnreachable(f"cannot read the sandbox state file {path}: {error}") from None
    url = state.get("url") if isinstance(state, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SandboxUnreachable(f"the sandbox state file {path} names no URL: {state!r}")
    return url.rstrip("/")


def call(method: str, url: str, path: str, *, timeout_s: float = TIMEOUT_S) -> Any:
    """One admin call; its JSON body, or `SandboxUnreachable` for no answer, an error status or non-JSON."""
    try:
        response = httpx.request(method, f"{url}{path}", timeout=timeout_s)
    except httpx.HTTPError as error:
        raise SandboxUnreachable(
            f"the sandbox at {url} does not answer ({type(error).__name__}: {error}); "
            "is ./fmcsa up still running?"
        ) from None
    if response.status_code != 200:
        raise SandboxUnreachable(f"the sandbox at {url} answered {method} {path} with {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SandboxUnreachable(f"the sandbox at {url} answered {method} {path} with no JSON") from None


def _ask(method: str, path: str) -> Any:
    try:
        return call(method, sandbox_url(state_file(os.environ)), path)
    except SandboxUnreachable as error:
        typer.echo(f"fmcsa sandbox: {error}", err=True)
        raise typer.Exit(1) from None


@sandbox_app.command()
def bump() -> None:
    """Advance the sandbox's data version by one (the next monthly run); prints the new version."""
    answer = _ask("POST", "/_sandbox/bump")
    version = answer.get("data_version") if isinstance(answer, dict) else None
    if not isinstance(version, int):
        typer.echo(f"fmcsa sandbox: the bump answer names no data version: {answer!r}", err=True)
        raise typer.Exit(1)
    typer.echo(version)


@sandbox_app.command()
def stats() -> None:
    """Print the sandbox's counters as JSON: data version, per-source requests, 429s, faults, ..."""
    typer.echo(json.dumps(_ask("GET", "/_sandbox/stats"), indent=2))
