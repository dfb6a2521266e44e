"""`./fmcsa`: start the whole system on its embedded default, run the tests, and operator commands.

`up` and `test` are the two commands of the README; `token` mints a gateway token, `rebuild-status`
replays the stream (from the newest snapshot) into a new status store, `snapshot-status` saves a
snapshot of it into the bus, `bench` runs the benchmarks (bench/), and
`sandbox bump|stats` (in `sandbox_commands`) drives the sandbox that `up` started. Every command
reads its configuration from the environment (FMCSA_*), like the services.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from fmcsa_cli.doctor import run as run_doctor
from fmcsa_cli.doctor import table as doctor_table
from fmcsa_cli.launcher import (
    ALL_SERVICES,
    BUS_CREDENTIAL_SETTINGS,
    Launcher,
    LaunchFailed,
    bus_credential_env,
    jwt_secret,
    secured_nats_server,
)
from fmcsa_cli.sandbox_commands import sandbox_app
from fmcsa_cli.upstreams import (
    EnvFileError,
    Upstream,
    credential_summary,
    keys_going_to_the_sandbox,
    settings_environment,
)
from fmcsa_embedded import NatsServer
from fmcsa_events.permissions import STATUS
from fmcsa_runtime.tokens import Role, mint

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(sandbox_app, name="sandbox")


def _data_dir() -> Path:
    return Path(os.environ.get("FMCSA_DATA_DIR", ".fmcsa-data"))


def _port(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(name, str(default))
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise typer.BadParameter(f"{name} must be a port number, got {raw!r}")
    return int(raw)


class _Stop(Exception):
    """Raised by the signal handler to leave the supervision loop."""


@app.command()
def up(
    services: Annotated[
        list[str] | None,
        typer.Option("--service", "-s", help="Start only these services (repeatable); default all."),
    ] = None,
    upstream: Annotated[
        Upstream,
        typer.Option(
            help="sandbox: start the sandbox and point the sources at it. real: no sandbox; the sources "
            "call the real FMCSA hosts with the keys from the environment or FMCSA_ENV_FILE."
        ),
    ] = Upstream.SANDBOX,
) -> None:
    """Start NATS (from the wheel), the sandbox upstream and every service; Ctrl-C stops them all."""
    try:
        settings = settings_environment(os.environ, upstream)
    except EnvFileError as error:
        typer.echo(f"fmcsa up: {error}", err=True)
        raise typer.Exit(2) from None
    if upstream is Upstream.REAL:
        if services and "sandbox" in services:
            typer.echo("fmcsa up: --upstream real starts no sandbox; drop -s sandbox", err=True)
            raise typer.Exit(2)
        services = services or [spec.name for spec in ALL_SERVICES if spec.name != "sandbox"]
    elif services is None or "sandbox" in services:
        for note in keys_going_to_the_sandbox(settings):
            typer.echo(note, err=True)
    data_dir = Path(settings.pop("FMCSA_DATA_DIR", ".fmcsa-data"))
    launcher = Launcher(
        data_dir=data_dir,
        gateway_port=_port("FMCSA_GATEWAY_PORT", 8000, settings),
        nats_port=_port("FMCSA_NATS_PORT", 0, settings),
        services=services,
        extra_env=settings,
    )

    def stop(signum: int, _: object) -> None:
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        launcher.start()
        assert launcher.nats is not None
        token = mint(jwt_secret(launcher.data_dir, settings), role=Role.ADMIN, subject="admin")
        typer.echo(
            "\n".join(
                [
                    "fmcsa-sync is up.",
                    f"  gateway:      {launcher.gateway_url}",
                    f"  admin token:  {token}",
                    f"  nats:         {launcher.nats.url} (users and passwords: "
                    f"{launcher.data_dir / 'nats-users'}/)",
                    f"  sandbox:      {launcher.sandbox_url or '(not started)'}",
                    *(credential_summary(settings) if upstream is Upstream.REAL else []),
                    f"  data, logs:   {launcher.data_dir} ({launcher.logs_dir.name}/)",
                    "Press Ctrl-C to stop.",
                ]
            ),
        )
        while True:
            time.sleep(1.0)
            for name in launcher.supervise():
                typer.echo(
                    f"restarted {name} (it had exited; see {launcher.logs_dir / (name + '.log')})", err=True
                )
    except _Stop:
        typer.echo("stopping...")
    except LaunchFailed as error:
        typer.echo(f"fmcsa up failed: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        launcher.stop()
    typer.echo("stopped.")


@app.command()
def doctor(
    dot: Annotated[
        str | None,
        typer.Option(
            help="The carrier to ask each upstream for (default: 2847193 on the sandbox, else 21800)."
        ),
    ] = None,
) -> None:
    """Check each source's host, TLS, key, answer, rate-limit headers and clock, the stores and NATS.

    Uses the settings `up --upstream real` would give the services (the environment over
    FMCSA_ENV_FILE); prints one row per check with a remedy for each failure, never a secret.
    Exit 0 only when every configured source is usable.
    """
    rows, code = run_doctor(os.environ, running_nats_url=_running_nats_url, dot=dot)
    typer.echo(doctor_table(rows))
    raise typer.Exit(code)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Run the whole test suite (pytest) over two worker processes; extra arguments go to pytest.

    Workers: FMCSA_TEST_WORKERS (default 2; 0 is one process), or `-n N` among the arguments. Every
    whole-system test with a bound in time runs on one worker (SERIAL_PATHS in the root conftest), the
    rest on the other. With FMCSA_TEST_NATS_URL (one shared server) the default is one process.
    """
    command = [sys.executable, "-m", "pytest", *pytest_defaults(ctx.args, os.environ), *ctx.args]
    code = subprocess.call(command, env=suite_environment(os.environ))  # ./fmcsa runs from the repository
    raise typer.Exit(code)


def suite_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the test run: this one without PYTHONDONTWRITEBYTECODE.

    So pytest keeps the test modules it rewrote for its assertions (in the gitignored `__pycache__`
    folders) and each worker does not rewrite all of them at every run: collecting the suite took 15.9 s
    of CPU with the variable set against 5.8 s without it, per worker. `./fmcsa` compiles the rest.
    """
    return {name: value for name, value in environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def pytest_defaults(args: list[str], environ: Mapping[str, str]) -> list[str]:
    """The options `./fmcsa test` adds unless the arguments set them: workers and the slowest tests."""
    defaults: list[str] = []
    if not any(arg.startswith(("-n", "--numprocesses")) for arg in args):
        default = "0" if environ.get("FMCSA_TEST_NATS_URL") else "2"  # one shared server: one process
        workers = environ.get("FMCSA_TEST_WORKERS", default)
        if not workers.isdigit():
            raise typer.BadParameter(f"FMCSA_TEST_WORKERS must be a whole number, got {workers!r}")
        # loadgroup: the timing-bound whole-system tests share one worker (the root conftest's SERIAL_PATHS)
        defaults += ["-n", workers, "--dist", "loadgroup"] if int(workers) > 0 else ["-n", "0"]
    if not any(arg.startswith("--durations") for arg in args):
        defaults.append("--durations=20")
    return defaults


SCREENSHOTS = {
    "gateway-carrier-page-desktop.png": "carrier-page.png",
    "gateway-carrier-page-phone.png": "carrier-page-phone.png",
}
"""The browser test's screenshots the README shows, and their names under docs/screenshots/."""


@app.command()
def screenshots() -> None:
    """Regenerate the README's screenshots of the carrier page (docs/screenshots/): runs the carrier page's
    browser test (tests/e2e/test_carrier_page.py, Debian's Chromium) with FMCSA_TEST_ARTIFACTS set to a
    temporary folder, then copies its desktop and phone screenshots in.
    """
    import shutil
    import tempfile

    target = Path("docs") / "screenshots"  # ./fmcsa runs from the repository root
    with tempfile.TemporaryDirectory(prefix="fmcsa-shots-") as folder:
        test = "services/gateway/tests/e2e/test_carrier_page.py"
        command = [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", test]
        code = subprocess.call(command, env={**os.environ, "FMCSA_TEST_ARTIFACTS": folder})
        if code != 0:
            raise typer.Exit(code)
        target.mkdir(parents=True, exist_ok=True)
        for made, kept in SCREENSHOTS.items():
            shutil.copyfile(Path(folder) / made, target / kept)
            typer.echo(f"wrote {target / kept}")


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="viewer, operator or admin")] = Role.VIEWER,
    sub: Annotated[str, typer.Option(help="Who the token names; events carry it as who asked.")] = "cli",
    days: Annotated[int, typer.Option(min=1, max=365, help="Days until it expires.")] = 30,
) -> None:
    """Print a bearer token for the gateway, signed with FMCSA_JWT_SECRET (or the data folder's secret)."""
    from datetime import timedelta

    typer.echo(
        mint(jwt_secret(_data_dir().resolve(), os.environ), role=role, subject=sub, ttl=timedelta(days=days))
    )


@app.command("rebuild-status")
def rebuild_status(
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Compare the newest snapshot plus the events after it (with --from-scratch or without a"
            " valid snapshot: the live store) with a replay of the whole stream; swap nothing.",
        ),
    ] = False,
    from_scratch: Annotated[
        bool, typer.Option("--from-scratch", help="Replay the whole stream; start from no snapshot.")
    ] = False,
) -> None:
    """Rebuild the status store from the newest valid snapshot and the events after it (or the whole
    stream) and swap it in (or --verify: print differences).

    Uses the NATS of the running `./fmcsa up` (from `<data dir>/up.json`) or FMCSA_NATS_URL; with
    neither, it starts nats-server on the data folder's stream for the time of the rebuild. On `up`'s
    NATS it connects as the `status` user, with the password `up` keeps in the data folder; with
    FMCSA_NATS_URL, as FMCSA_NATS_USER. It runs the status service's own `fmcsa-status-rebuild` as a
    process: the CLI imports no service.
    """
    flags = [*(["--verify"] if verify else []), *(["--from-scratch"] if from_scratch else [])]
    raise typer.Exit(_run_status_tool("rebuild-status", "fmcsa_status.rebuild", flags))


@app.command("snapshot-status")
def snapshot_status() -> None:
    """Save a snapshot of the status store, with the stream position it reflects, into the bus
    (object store `fmcsa_status_snapshots`); `rebuild-status` then starts from it.

    Finds NATS as `rebuild-status` does and runs the status service's own `fmcsa-status-snapshot`.
    """
    raise typer.Exit(_run_status_tool("snapshot-status", "fmcsa_status.snapshot", []))


def _run_status_tool(command_name: str, module: str, flags: list[str]) -> int:
    """Run a status service tool as a process, as the `status` bus user, on `up`'s NATS, FMCSA_NATS_URL,
    or a nats-server started on the data folder's stream for the time it runs.
    """
    data_dir = _data_dir().resolve()
    env = {**os.environ, "FMCSA_DATA_DIR": str(data_dir)}
    nats: NatsServer | None = None
    if "FMCSA_NATS_URL" not in os.environ:
        for name in BUS_CREDENTIAL_SETTINGS:
            env.pop(name, None)
        env |= bus_credential_env(data_dir, STATUS)
        nats_url = _running_nats_url(data_dir)
        if nats_url is None:
            if not (data_dir / "nats").is_dir():
                typer.echo(
                    f"{command_name}: no event stream under {data_dir} (run ./fmcsa up first)", err=True
                )
                raise typer.Exit(1)
            (data_dir / "logs").mkdir(parents=True, exist_ok=True)
            nats = secured_nats_server(data_dir, log_name=f"nats-{command_name.split('-')[0]}.log").start()
            nats_url = nats.url
        env["FMCSA_NATS_URL"] = nats_url
    try:
        return subprocess.call([sys.executable, "-m", module, *flags], env=env)
    finally:
        if nats is not None:
            nats.stop()


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="The smaller run: under 3 minutes, quick figures scaled.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only this stage: pipeline, events, gateway, scheduler, webhooks, snapshot"
            " (repeatable).",
        ),
    ] = None,
) -> None:
    """Measure the performance goals against their baselines in one run (see BENCHMARKS.md).

    Prints each figure and its goal as its stage finishes, then the table, and writes
    `bench/results/<UTC time>.json`. Runs `python -m bench.run` from the repository root as its own
    process: the benchmark starts and imports services, the CLI does not.
    """
    root = _repository_root()
    if root is None:
        typer.echo("bench: no bench/run.py here; run ./fmcsa bench from the repository", err=True)
        raise typer.Exit(1)
    command = [sys.executable, "-m", "bench.run", *(["--quick"] if quick else [])]
    command += [f"--only={stage}" for stage in only or []]
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    raise typer.Exit(subprocess.call(command, cwd=root, env={**os.environ, "PYTHONPATH": path}))


def _repository_root() -> Path | None:
    """The folder holding `bench/run.py`: the working directory (./fmcsa runs there), else the checkout
    this package was installed from (the workspace installs it editable).
    """
    for candidate in (Path.cwd(), *Path(__file__).resolve().parents):
        if (candidate / "bench" / "run.py").is_file():
            return candidate
    return None


def _running_nats_url(data_dir: Path) -> str | None:
    """The NATS URL of the `./fmcsa up` running on this data folder, if one is."""
    try:
        state = json.loads((data_dir / "up.json").read_text())
        pid = int(state["launcher_pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    url = state.get("nats_url")
    return url if isinstance(url, str) else None


def main() -> None:
    app()
