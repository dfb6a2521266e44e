"""The embedded default: one nats-server from the wheel and every service as its own process.

`Launcher.start()` starts nats-server (JetStream, `sync_interval: always`, store under the data folder),
then the services in dependency order, each in its own process group with its log under
`<data dir>/logs/`. The bus always asks for a password: `bus_passwords` keeps one per NATS user
(`fmcsa_events.permissions`) under `<data dir>/nats-users/` (mode 0600, reused by the next start), the
server gets the authorization block with every user's permissions, and each service gets only its own
user and the path of its own password file. `Launcher.stop()` stops the services in reverse order
(SIGTERM, grace, SIGKILL) and nats-server last, so no process is left behind. A second start on the
same data folder resumes with the same stream, databases and passwords. `supervise()` restarts a
service that died, with back-off.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fmcsa_cli.upstreams import SANDBOX_API_KEY, SANDBOX_APP_TOKEN, SANDBOX_WEB_KEY, SOURCES
from fmcsa_embedded import Child, NatsServer, free_port, wait_for_port
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.permissions import (
    ADMIN,
    GATEWAY,
    NOTIFIER,
    SCHEDULER,
    STATUS,
    USERS,
    render_authorization,
    source_user,
)


def sandbox_wiring(sandbox_url: str, user: Mapping[str, str]) -> dict[str, str]:
    """Point each source at the sandbox, with the sandbox's credential only where it goes to the sandbox.

    A source whose base URL the user set elsewhere (a real host, a proxy) gets no sandbox credential:
    its own key if the user set one, else none (QCMobile and SaferWebAPI then answer `not_configured`,
    Socrata reads anonymously). A sandbox credential is never sent to a host other than this sandbox.
    The freshness checks (violations, csa), the publication cadences (inspections, authority) and the
    violations delta reads are off (see below); a value the user set wins, as every setting does.
    """
    env: dict[str, str] = {}
    for upstream in SOURCES:
        url = f"{sandbox_url}{upstream.sandbox_path}"
        env[upstream.base_url_setting] = url
        if user.get(upstream.base_url_setting, url) == url:
            env[upstream.key_setting] = upstream.sandbox_key
    # a `sandbox bump` publishes at once and the demo and the tests sync right after it: the violations
    # freshness check (which trusts the dataset's rowsUpdatedAt for minutes) is off against the sandbox
    # unless the user sets it
    env["FMCSA_VIOLATIONS_FRESHNESS_CHECK_S"] = "0"
    # and so are its delta reads: a sync right after a bump should age rows out at once, which only a full
    # read does (a delta's carrier is reconciled on its next sync); set FMCSA_VIOLATIONS_DELTA_WINDOW_S to
    # try them against the sandbox
    env["FMCSA_VIOLATIONS_DELTA_WINDOW_S"] = "0"
    # csa asks the same dataset's metadata whether a new SMS run was published; off for the same reason
    env["FMCSA_CSA_PUBLICATION_URL"] = sandbox_url
    env["FMCSA_CSA_PUBLICATION_CHECK_S"] = "0"
    # inspections and authority skip a carrier fetched within the current day (their upstreams publish
    # daily); the sandbox changes whenever it is bumped, so they fetch at every sync against it
    env["FMCSA_INSPECTIONS_PUBLICATION_PERIOD_S"] = "0"
    env["FMCSA_AUTHORITY_PUBLICATION_PERIOD_S"] = "0"
    # and so is authority's daily difference gate: the sandbox serves the daily differences, but the gate
    # sees a bump only at its next check (minutes) and a full bump lists only the carriers already served
    env["FMCSA_AUTHORITY_DAILY_DIFFERENCE"] = "false"
    # and inspections' change gate, for the same reasons (the sandbox serves the inspection and crash files)
    env["FMCSA_INSPECTIONS_CHANGE_GATE"] = "false"
    return env


class LaunchFailed(RuntimeError):
    """A service exited or did not answer while starting; the message carries its log's tail."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one service: its module (run with `python -m`), the variable of its HTTP port, and
    the NATS user it connects as (None: it does not use the bus).
    """

    name: str
    module: str
    http_port_env: str | None = None
    bus_user: str | None = None


SOURCE_SERVICES: tuple[ServiceSpec, ...] = tuple(
    ServiceSpec(key.value, f"fmcsa_source_{key.value}", f"FMCSA_{key.name}_HTTP_PORT", source_user(key))
    for key in SourceKey
)
"""One service per source key, `python -m fmcsa_source_<key>` as its own bus user."""

# Dependency order: the sandbox and the projector first, the gateway last.
ALL_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("sandbox", "fmcsa_sandbox", "FMCSA_SANDBOX_PORT"),
    ServiceSpec("status", "fmcsa_status", "FMCSA_STATUS_HTTP_PORT", STATUS),
    *SOURCE_SERVICES,
    ServiceSpec("scheduler", "fmcsa_scheduler", "FMCSA_SCHEDULER_HTTP_PORT", SCHEDULER),
    ServiceSpec("notifier", "fmcsa_notifier", "FMCSA_NOTIFIER_HTTP_PORT", NOTIFIER),
    ServiceSpec("gateway", "fmcsa_gateway", None, GATEWAY),
)

BUS_CREDENTIAL_SETTINGS = ("FMCSA_NATS_USER", "FMCSA_NATS_PASSWORD", "FMCSA_NATS_PASSWORD_FILE")
"""Set by the launcher for each child, to that child's own user; never passed through from outside."""


def private_folder(path: Path) -> Path:
    """Create `path` if needed and make it 0700: `up`'s data folder holds the secrets, the NATS store,
    the SQLite stores and the logs, for this user only.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def jwt_secret(data_dir: Path, environ: Mapping[str, str]) -> str:
    """`FMCSA_JWT_SECRET` if set; else a random secret kept in `<data dir>/jwt-secret` (mode 0600), so
    tokens printed by one `up` still work after the next.
    """
    if secret := environ.get("FMCSA_JWT_SECRET"):
        return secret
    path = data_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    private_folder(data_dir)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret)
    return secret


def webhook_secret_key(data_dir: Path, environ: Mapping[str, str]) -> str:
    """`FMCSA_WEBHOOK_SECRET_KEY` if set; else a Fernet key kept in `<data dir>/webhook-secret-key` (mode
    0600), so secrets sealed under one `up` still open after the next. Losing it loses every sealed secret.
    """
    if key := environ.get("FMCSA_WEBHOOK_SECRET_KEY"):
        return key
    path = data_dir / "webhook-secret-key"
    if path.exists():
        return path.read_text().strip()
    private_folder(data_dir)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()  # a Fernet key (cryptography's format)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key)
    return key


def sandbox_receiver_allow_list(sandbox_port: int) -> str:
    """The webhook allow-list `up` sets: the sandbox's receiver (/_sandbox/webhooks/*, on loopback) and
    nothing else of 127.0.0.1 - not the gateway, not the sandbox's admin API on other ports, not NATS.
    """
    return f"127.0.0.1:{sandbox_port}"


def bus_password_file(data_dir: Path, user: str) -> Path:
    """Where `up` keeps a NATS user's password: `<data dir>/nats-users/<user>`."""
    if user not in USERS:
        raise ValueError(f"no NATS user {user!r}")
    return data_dir / "nats-users" / user


def bus_passwords(data_dir: Path) -> dict[str, str]:
    """Every NATS user's password: read from `<data dir>/nats-users/`, or made (random, 32 bytes) and
    written there with mode 0600 (the folder 0700) the first time, so the next start reuses them.
    """
    folder = data_dir / "nats-users"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    passwords = {}
    for user in USERS:
        path = bus_password_file(data_dir, user)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
        passwords[user] = path.read_text().strip()
    return passwords


def bus_credential_env(data_dir: Path, user: str) -> dict[str, str]:
    """The settings that make a process connect as `user` with the password `up` keeps for it."""
    return {"FMCSA_NATS_USER": user, "FMCSA_NATS_PASSWORD_FILE": str(bus_password_file(data_dir, user))}


def secured_nats_server(
    data_dir: Path, *, port: int = 0, log_name: str = "nats-server.log", sync_always: bool = True
) -> NatsServer:
    """The nats-server of the data folder, its users and permissions configured (not started yet)."""
    return NatsServer(
        store_dir=data_dir / "nats",
        port=port,
        sync_always=sync_always,
        log_file=data_dir / "logs" / log_name,
        authorization=render_authorization(bus_passwords(data_dir)),
    )


@dataclass
class Launcher:
    data_dir: Path
    gateway_port: int = 8000
    nats_port: int = 0
    services: Iterable[str] | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    nats_sync_always: bool = True
    """`sync_interval: always` (what `up` runs). The tests that kill processes but never the OS turn it off,
    as the test harness's own servers do: a killed nats-server loses nothing without it."""
    nats: NatsServer | None = field(default=None, init=False)
    children: dict[str, Child] = field(default_factory=dict, init=False)
    sandbox_url: str | None = field(default=None, init=False)
    _restarts: dict[str, list[float]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        wanted = set(self.services) if self.services is not None else None
        self._specs = [s for s in ALL_SERVICES if wanted is None or s.name in wanted]
        if wanted is not None and (unknown := wanted - {s.name for s in ALL_SERVICES}):
            raise ValueError(f"unknown services: {', '.join(sorted(unknown))}")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def bus_admin(self) -> dict[str, str]:
        """`nats.connect` keyword arguments for the admin user (tests, benchmarks, operators)."""
        return {"user": ADMIN, "password": bus_passwords(self.data_dir)[ADMIN]}

    def start(self) -> None:
        # every file this process and the services it starts create is this user's only (children
        # inherit the umask): the NATS store, the SQLite stores, the logs, up.json
        os.umask(0o077)
        private_folder(self.data_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.nats = secured_nats_server(
            self.data_dir, port=self.nats_port, sync_always=self.nats_sync_always
        ).start()
        self._env = self._environment()
        self._ports: dict[str, int] = {}
        for spec in self._specs:
            self._start(spec)
            if spec.name == "sandbox":  # the sources call it as soon as they start
                self._wait_ready(spec.name, within_s=30)
        for spec in self._specs:
            self._wait_ready(spec.name, within_s=60)
        self._write_state()

    def _wait_ready(self, name: str, *, within_s: float) -> None:
        """Wait until the service's HTTP port answers and (but the sandbox) its `/ready` says 200: a
        service opens its port before it has connected; fail with its log's tail if it exits first.
        """
        child = self.children[name]
        deadline = time.monotonic() + within_s
        try:
            wait_for_port("127.0.0.1", self._ports[name], within_s=within_s, process=child.process)
            if name != "sandbox":
                _wait_http_ok(f"http://127.0.0.1:{self._ports[name]}/ready", deadline, child)
        except (RuntimeError, TimeoutError) as error:
            tail = ""
            if child.log_path is not None and child.log_path.exists():
                tail = "\n".join(child.log_path.read_text(errors="replace").splitlines()[-15:])
            self.stop(grace_s=5)
            raise LaunchFailed(f"{name} did not start: {error}\n{tail}") from error

    def _environment(self) -> dict[str, str]:
        assert self.nats is not None
        user = {k: v for k, v in os.environ.items() if k.startswith("FMCSA_") and k != "FMCSA_DATA_DIR"}
        user |= dict(self.extra_env)
        env = {
            "FMCSA_NATS_URL": self.nats.url,
            "FMCSA_DATA_DIR": str(self.data_dir),
            "FMCSA_GATEWAY_PORT": str(self.gateway_port),
            "FMCSA_JWT_SECRET": jwt_secret(self.data_dir, {**os.environ, **self.extra_env}),
            "FMCSA_WEBHOOK_SECRET_KEY": webhook_secret_key(self.data_dir, {**os.environ, **self.extra_env}),
            "FMCSA_NOTIFIER_API_URL": self.gateway_url,
            "PYTHONUNBUFFERED": "1",
        }
        if any(s.name == "sandbox" for s in self._specs):
            port = free_port()
            self.sandbox_url = f"http://127.0.0.1:{port}"
            env |= {
                "FMCSA_SANDBOX_PORT": str(port),
                "FMCSA_SANDBOX_STATE_FILE": str(self.data_dir / "sandbox.json"),
                "FMCSA_SANDBOX_QCMOBILE_WEB_KEY": SANDBOX_WEB_KEY,
                "FMCSA_SANDBOX_SOCRATA_APP_TOKEN": SANDBOX_APP_TOKEN,
                "FMCSA_SANDBOX_SAFERWEB_API_KEY": SANDBOX_API_KEY,
                # the sandbox's webhook receiver (/_sandbox/webhooks/*) on loopback: that port only
                "FMCSA_WEBHOOK_ALLOW_HOSTS": sandbox_receiver_allow_list(port),
            }
            env |= sandbox_wiring(self.sandbox_url, user)
        # settings the user set win over the sandbox wiring (e.g. real credentials and hosts)
        env |= user
        env["FMCSA_NATS_URL"] = self.nats.url
        for name in BUS_CREDENTIAL_SETTINGS:
            env.pop(name, None)
        return env

    def _start(self, spec: ServiceSpec) -> None:
        env = dict(self._env)
        if spec.bus_user is not None:
            env |= bus_credential_env(self.data_dir, spec.bus_user)
        if spec.name == "sandbox":
            assert self.sandbox_url is not None
            self._ports[spec.name] = int(self.sandbox_url.rsplit(":", 1)[1])
        elif spec.name == "gateway":
            self._ports[spec.name] = self.gateway_port
        elif spec.http_port_env:
            port = free_port()
            env[spec.http_port_env] = str(port)
            self._ports[spec.name] = port
        child = Child(
            spec.name,
            [sys.executable, "-m", spec.module],
            env,
            log_path=self.logs_dir / f"{spec.name}.log",
            unset=[name for name in BUS_CREDENTIAL_SETTINGS if name not in env],
        )
        self.children[spec.name] = child.start()

    def _write_state(self) -> None:
        state = {
            "launcher_pid": os.getpid(),
            "nats_url": self.nats.url if self.nats else None,
            "nats_pid": self.nats.process.pid if self.nats and self.nats.process else None,
            "gateway_url": self.gateway_url,
            "sandbox_url": self.sandbox_url,
            "services": {n: c.process.pid for n, c in self.children.items() if c.process},
        }
        (self.data_dir / "up.json").write_text(json.dumps(state, indent=2))

    def supervise(self) -> list[str]:
        """Restart services that died (at most 5 restarts a minute each); returns the names restarted."""
        restarted = []
        now = time.monotonic()
        for spec in self._specs:
            child = self.children.get(spec.name)
            if child is None or child.alive:
                continue
            recent = [t for t in self._restarts.get(spec.name, []) if now - t < 60]
            if len(recent) >= 5:
                continue
            self._restarts[spec.name] = [*recent, now]
            self._start(spec)
            restarted.append(spec.name)
        if restarted:
            self._write_state()
        return restarted

    def stop(self, *, grace_s: float = 15.0) -> None:
        # SIGTERM every service at once, then wait for each: a slow one does not delay the others' stop.
        for running in self.children.values():
            running.terminate()
        for spec in reversed(self._specs):
            if spec.name in self.children:
                self.children.pop(spec.name).stop(grace_s=grace_s)
        if self.nats is not None:
            self.nats.stop()
            self.nats = None
        state = self.data_dir / "up.json"
        if state.exists():
            state.unlink()


def _wait_http_ok(url: str, deadline: float, child: Child) -> None:
    """Poll `url` until it answers 200; TimeoutError at the deadline, RuntimeError if the child exits."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    while time.monotonic() < deadline:
        if child.process is not None and child.process.poll() is not None:
            raise RuntimeError(f"process exited with {child.process.returncode} before {url} said ready")
        try:
            with direct.open(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:  # refused, 503 (HTTPError is an OSError) or timed out: not ready yet
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not say ready in time")
