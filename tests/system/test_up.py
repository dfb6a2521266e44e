"""`./fmcsa up` end to end: real nats-server from the wheel, real service processes, a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from fmcsa_cli.launcher import (
    ALL_SERVICES,
    SANDBOX_API_KEY,
    SANDBOX_APP_TOKEN,
    SANDBOX_WEB_KEY,
    Launcher,
    bus_password_file,
    bus_passwords,
)
from fmcsa_embedded import free_port
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.models import ErrorKind, SourceFailed, SyncRequested, Trigger
from fmcsa_events.permissions import USERS
from fmcsa_events.topology import Topology, declare
from fmcsa_runtime.tokens import Role, mint

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
URL_WITHIN_S = 60.0 if os.environ.get("PYTEST_XDIST_WORKER") else 30.0
"""The issue's bound is 30 s on a fresh, idle machine (measured from a fresh clone: see the README).
Under `./fmcsa test`'s workers this test shares two cores with the other worker's tests (load average
up to 5), where the same start has taken 31 s and more; there it gets 60 s and prints what it took."""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); count it as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def launcher_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launcher]:
    for key in list(os.environ):
        if key.startswith("FMCSA_") and key != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    launcher = Launcher(data_dir=tmp_path / "data", gateway_port=free_port(), services=["csa"])
    launcher.start()
    try:
        yield launcher
    finally:
        launcher.stop()


async def test_two_processes_exchange_an_event_through_the_stream(
    launcher_without_credentials: Launcher, wait_until: Any
) -> None:
    """This test's process publishes a request; the csa service process (no webKey) answers it."""
    assert launcher_without_credentials.nats is not None
    nc = await nats.connect(launcher_without_credentials.nats.url, **launcher_without_credentials.bus_admin())
    js = nc.jetstream()
    now = datetime.now(UTC)
    request = SyncRequested(
        request_id=uuid4(),
        dot="2847193",
        source="csa",
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(minutes=5),
    )
    await declare(js, Topology())  # idempotent: whichever process comes first creates the stream
    await Bus(js, producer="test").publish(request)
    found: list[SourceFailed] = []

    async def answered() -> bool:
        sub = await js.subscribe(
            "fmcsa.evt.source_failed.csa.2847193",
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        try:
            msg = await sub.next_msg(timeout=0.5)
        except nats.errors.TimeoutError:
            return False
        finally:
            await sub.unsubscribe()
        decoded = decode(msg.headers, msg.data)
        assert isinstance(decoded, Decoded)
        assert isinstance(decoded.event, SourceFailed)
        found.append(decoded.event)
        return True

    try:
        await wait_until(answered, what="the csa service's answer", within_s=30)
    finally:
        await nc.drain()
    outcome = found[-1]
    log = (launcher_without_credentials.logs_dir / "csa.log").read_text()
    assert log.count('"source_not_configured"') == 1, "one warning at start, not one per request"
    assert outcome.request_id == request.request_id
    assert outcome.kind is ErrorKind.NOT_CONFIGURED
    assert outcome.retryable is False


def read_until(process: subprocess.Popen[str], marker: str, within_s: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + within_s
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            lines.append(line.rstrip("\n"))
            if marker in line:
                return lines
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)  # poll interval: nothing printed yet
    raise AssertionError(f"no {marker!r} within {within_s}s; output so far: {lines}")


def start_up(
    data_dir: Path, gateway_port: int, *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")}
    env |= {"FMCSA_DATA_DIR": str(data_dir), "FMCSA_GATEWAY_PORT": str(gateway_port)}
    env |= env_extra or {}
    return subprocess.Popen(
        [sys.executable, "-m", "fmcsa_cli", "up", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_up(up: subprocess.Popen[str], data_dir: Path) -> None:
    """After a failed check, stop `up` as a user would (Ctrl-C: the launcher stops every service, each
    in its own process group), and SIGKILL whatever is left only then: no process outlives the test.
    """
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    with contextlib.suppress(OSError, ValueError, KeyError):
        state = json.loads((data_dir / "up.json").read_text())  # still there: `up` did not stop cleanly
        for pid in [state["nats_pid"], *state["services"].values()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    if up.stdout is not None:
        up.stdout.close()


@pytest.mark.timeout(300)  # two starts, two stops and two rebuilds, on a loaded box
def test_up_prints_the_url_then_stops_cleanly_on_sigint_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    started = time.monotonic()
    up = start_up(data_dir, port)
    try:
        lines = read_until(up, "Press Ctrl-C", within_s=URL_WITHIN_S)
        elapsed = time.monotonic() - started
        assert f"gateway:      http://127.0.0.1:{port}" in "\n".join(lines), lines
        token_line = next(line for line in lines if "admin token:" in line)
        assert token_line.split("admin token:")[1].strip().count(".") == 2  # a JWT
        state = json.loads((data_dir / "up.json").read_text())
        pids = [state["nats_pid"], *state["services"].values()]
        assert set(state["services"]) == {
            "sandbox",
            "status",
            "csa",
            "violations",
            "inspections",
            "authority",
            "scheduler",
            "notifier",
            "gateway",
        }

        async def gateway_ready() -> None:
            async with httpx.AsyncClient() as client:
                for _ in range(300):
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)  # poll interval of the readiness check, not a guess at how long
            raise AssertionError("the gateway never became ready")

        asyncio.run(gateway_ready())
        token = token_line.split("admin token:")[1].strip()
        registered = httpx.post(
            f"http://127.0.0.1:{port}/api/companies",
            json={"dot_number": "1234567", "name": "Resume Test Lines"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert registered.status_code in (200, 201, 202), registered.text
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
    finally:
        stop_up(up, data_dir)
    orphans = [pid for pid in pids if alive(pid)]
    assert orphans == [], f"processes left behind: {orphans}"
    assert not (data_dir / "up.json").exists()
    print(f"up printed its URL after {elapsed:.1f}s")

    again = start_up(data_dir, port)
    try:
        read_until(again, "Press Ctrl-C", within_s=URL_WITHIN_S)
        assert (data_dir / "nats" / "jetstream").is_dir()
        again.send_signal(signal.SIGINT)
        assert again.wait(timeout=60) == 0
    finally:
        stop_up(again, data_dir)

    # with nothing running, rebuild-status starts nats-server on the data folder's stream itself
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")}
    env["FMCSA_DATA_DIR"] = str(data_dir)
    verify = subprocess.run(
        [sys.executable, "-m", "fmcsa_cli", "rebuild-status", "--verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    rebuilt = subprocess.run(
        [sys.executable, "-m", "fmcsa_cli", "rebuild-status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    position = int(rebuilt.stdout.split("swapped in a store at position ")[1].split()[0])
    assert position >= 1, rebuilt.stdout  # the CompanyRegistered above, at least
    assert rebuilt.stdout.rstrip().endswith("from scratch"), rebuilt.stdout  # no snapshot yet

    # snapshot-status saves one into the bus, as the `status` user; the next rebuild starts from it
    saved = subprocess.run(
        [sys.executable, "-m", "fmcsa_cli", "snapshot-status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert f"at position {position} (" in saved.stdout, saved.stdout
    again_rebuilt = subprocess.run(
        [sys.executable, "-m", "fmcsa_cli", "rebuild-status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again_rebuilt.returncode == 0, again_rebuilt.stdout + again_rebuilt.stderr
    name = saved.stdout.split("saved ")[1].split()[0]
    assert "(0 events in" in again_rebuilt.stdout, again_rebuilt.stdout
    assert f"from snapshot {name} at {position}," in again_rebuilt.stdout, again_rebuilt.stdout


# --- credentials never cross hosts -------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class Recorder:
    """A loopback HTTP server standing in for a real upstream host: it records the path, query and
    headers of every request and answers `[]` (each source's parser turns that into a bounded outcome).
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                recorder.seen.append(
                    Seen(url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()})
                )
                body = b"[]"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorders() -> Iterator[dict[str, Recorder]]:
    hosts = {source: Recorder() for source in ("csa", "violations", "inspections")}
    yield hosts
    for host in hosts.values():
        host.close()


def base_urls(recorders: dict[str, Recorder]) -> dict[str, str]:
    """Each source's base URL setting pointed at its own loopback host (paths as on the real hosts)."""
    return {
        "FMCSA_CSA_BASE_URL": f"{recorders['csa'].url}/qc/services",
        "FMCSA_VIOLATIONS_BASE_URL": recorders["violations"].url,
        "FMCSA_INSPECTIONS_BASE_URL": recorders["inspections"].url,
    }


async def request_syncs_and_wait(
    nats_url: str, data_dir: Path, dot: str, recorders: dict[str, Recorder]
) -> dict[str, Any]:
    """Publish one SyncRequested per source (as `up`'s admin bus user); return each source's outcome."""
    admin = bus_password_file(data_dir, "admin").read_text().strip()
    nc = await nats.connect(nats_url, user="admin", password=admin)
    js = nc.jetstream()
    await declare(js, Topology())
    now = datetime.now(UTC)
    bus = Bus(js, producer="test")
    for source in recorders:
        await bus.publish(
            SyncRequested(
                request_id=uuid4(),
                dot=dot,
                source=source,
                trigger=Trigger.MANUAL,
                requested_by="test",
                requested_at=now,
                deadline=now + timedelta(minutes=5),
            )
        )
    outcomes: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 60
        while len(outcomes) < len(recorders) and time.monotonic() < deadline:
            for source in set(recorders) - set(outcomes):
                for kind in ("source_synced", "source_failed"):
                    sub = await js.subscribe(
                        f"fmcsa.evt.{kind}.{source}.{dot}",
                        ordered_consumer=True,
                        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
                    )
                    try:
                        msg = await sub.next_msg(timeout=0.3)
                    except nats.errors.TimeoutError:
                        continue
                    finally:
                        await sub.unsubscribe()
                    decoded = decode(msg.headers, msg.data)
                    assert isinstance(decoded, Decoded)
                    outcomes[source] = decoded.event
    finally:
        await nc.drain()
    assert set(outcomes) == set(recorders), f"no outcome from {set(recorders) - set(outcomes)}"
    return outcomes


def nats_url_of(lines: list[str]) -> str:
    return next(line for line in lines if line.strip().startswith("nats:")).split()[1]


def everything_sent(recorders: dict[str, Recorder]) -> str:
    return repr([(s.path, s.query, s.headers) for host in recorders.values() for s in host.seen])


@pytest.mark.timeout(180)
def test_up_never_sends_a_sandbox_credential_to_a_host_the_user_chose(
    tmp_path: Path, recorders: dict[str, Recorder]
) -> None:
    """The sandbox runs, but the user pointed all three sources elsewhere and set only SaferWebAPI's key:
    csa has no key (not_configured, nothing sent), violations reads anonymously (no X-App-Token),
    inspections sends the user's key; no sandbox credential reaches any of the three hosts.
    """
    data_dir = tmp_path / "data"
    user_key = f"user-api-key-{uuid4().hex}"
    env = base_urls(recorders) | {"FMCSA_INSPECTIONS_API_KEY": user_key}
    up = start_up(
        data_dir, free_port(), "-s", "sandbox", "-s", "csa", "-s", "violations", "-s", "inspections",
        env_extra=env,
    )  # fmt: skip
    try:
        lines = read_until(up, "Press Ctrl-C", within_s=URL_WITHIN_S)
        assert "(not started)" not in next(line for line in lines if "sandbox:" in line)
        outcomes = asyncio.run(request_syncs_and_wait(nats_url_of(lines), data_dir, "2847193", recorders))
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
    finally:
        stop_up(up, data_dir)
    sent = everything_sent(recorders)
    for sandbox_secret in (SANDBOX_WEB_KEY, SANDBOX_APP_TOKEN, SANDBOX_API_KEY):
        assert sandbox_secret not in sent
    assert recorders["csa"].seen == []
    assert isinstance(outcomes["csa"], SourceFailed)
    assert outcomes["csa"].kind is ErrorKind.NOT_CONFIGURED
    violations = recorders["violations"].seen
    assert violations, "violations reads anonymously: it calls the host"
    for seen in violations:
        assert seen.path == "/resource/8mt8-2mdr.json"
        assert "x-app-token" not in seen.headers
        assert not any(name.startswith("$$") for name in seen.query)
    inspections = recorders["inspections"].seen
    assert inspections
    for seen in inspections:
        assert seen.path == "/v2/usdot/snapshot/2847193"
        assert seen.headers["x-api-key"] == user_key
        assert seen.query == {}


@pytest.mark.timeout(180)
def test_up_upstream_real_starts_no_sandbox_and_sends_the_keys_of_the_env_file(
    tmp_path: Path, recorders: dict[str, Recorder]
) -> None:
    """`--upstream real` with the keys in an FMCSA_ENV_FILE (mode 0600); the hosts are loopback recorders
    set in the same file. Each host receives exactly the user's credential, in its documented place;
    inspections (no key) receives nothing; no key value is printed.
    """
    data_dir = tmp_path / "data"
    web_key, app_token = f"user-webkey-{uuid4().hex}", f"user-app-token-{uuid4().hex}"
    env_file = tmp_path / "fmcsa.env"
    settings = base_urls(recorders) | {"FMCSA_CSA_WEB_KEY": web_key, "FMCSA_VIOLATIONS_APP_TOKEN": app_token}
    env_file.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    env_file.chmod(0o600)
    up = start_up(
        data_dir,
        free_port(),
        "--upstream",
        "real",
        "-s",
        "csa",
        "-s",
        "violations",
        "-s",
        "inspections",
        env_extra={"FMCSA_ENV_FILE": str(env_file)},
    )
    output: list[str] = []
    try:
        lines = read_until(up, "Press Ctrl-C", within_s=URL_WITHIN_S)
        output += lines
        state = json.loads((data_dir / "up.json").read_text())
        assert set(state["services"]) == {"csa", "violations", "inspections"}
        assert state["sandbox_url"] is None
        outcomes = asyncio.run(request_syncs_and_wait(nats_url_of(lines), data_dir, "2847193", recorders))
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        assert up.stdout is not None
        output += (up.stdout.read() or "").splitlines()
    finally:
        stop_up(up, data_dir)
    printed = "\n".join(output)
    assert "FMCSA_CSA_WEB_KEY set" in printed
    assert "FMCSA_INSPECTIONS_API_KEY not set" in printed
    assert web_key not in printed
    assert app_token not in printed
    logs = "".join(path.read_text() for path in (data_dir / "logs").glob("*.log"))
    assert web_key not in logs
    assert app_token not in logs
    sent = everything_sent(recorders)
    for sandbox_secret in (SANDBOX_WEB_KEY, SANDBOX_APP_TOKEN, SANDBOX_API_KEY):
        assert sandbox_secret not in sent
    csa = recorders["csa"].seen
    assert csa
    for seen in csa:
        assert seen.path == "/qc/services/carriers/2847193"
        assert seen.query == {"webKey": [web_key]}
        assert not any(value == web_key for value in seen.headers.values())
    violations = recorders["violations"].seen
    assert violations
    for seen in violations:
        assert seen.headers["x-app-token"] == app_token
        assert app_token not in repr(seen.query)
    assert recorders["inspections"].seen == []
    assert isinstance(outcomes["inspections"], SourceFailed)
    assert outcomes["inspections"].kind is ErrorKind.NOT_CONFIGURED


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=oct)
def test_up_refuses_an_env_file_others_may_read(tmp_path: Path, mode: int) -> None:
    """Refused before anything starts, with the remedy; the key in the file is not printed."""
    secret = f"secret-{uuid4().hex}"
    env_file = tmp_path / "fmcsa.env"
    env_file.write_text(f"FMCSA_CSA_WEB_KEY={secret}\n")
    env_file.chmod(mode)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")}
    env |= {"FMCSA_DATA_DIR": str(tmp_path / "data"), "FMCSA_ENV_FILE": str(env_file)}
    done = subprocess.run(
        [sys.executable, "-m", "fmcsa_cli", "up", "--upstream", "real"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"mode {mode:04o}" in done.stderr
    assert f"chmod 600 {env_file}" in done.stderr
    assert secret not in done.stdout + done.stderr
    assert not (tmp_path / "data" / "up.json").exists()


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


async def refused_without_password(host: str, port: int) -> bytes:
    """The server's answer to a CONNECT without credentials (in the NATS protocol itself)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await asyncio.wait_for(reader.readline(), 5)  # INFO
        writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).strip()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.timeout(240)
async def test_up_runs_every_service_on_its_own_bus_user_and_a_sync_passes_the_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_until: Any
) -> None:
    """The launcher's bus asks for passwords; each child gets its own user and password file only; a
    sync end to end (gateway -> csa -> status) runs without one permission refused; the next start
    reuses the passwords; no password reaches a log."""
    for key in list(os.environ):
        if key.startswith("FMCSA_") and key != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("FMCSA_NATS_PASSWORD", "a-password-from-outside-must-not-reach-a-child")
    secret = "system-tests-of-the-bus-users-0123456789"
    data_dir = tmp_path / "data"
    launcher = Launcher(
        data_dir=data_dir,
        gateway_port=free_port(),
        extra_env={"FMCSA_JWT_SECRET": secret, "FMCSA_SCHEDULER_ENABLED": "false", "FMCSA_LOG_JSON": "true"},
    )
    launcher.start()
    try:
        assert launcher.nats is not None
        passwords = bus_passwords(data_dir)
        assert set(passwords) == set(USERS)
        assert stat.S_IMODE((data_dir / "nats-users").stat().st_mode) == 0o700
        for user in USERS:
            assert stat.S_IMODE(bus_password_file(data_dir, user).stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "nats" / "fmcsa.conf").stat().st_mode) == 0o600
        assert await refused_without_password(launcher.nats.host, launcher.nats.port) == (
            b"-ERR 'Authorization Violation'"
        )
        for spec in ALL_SERVICES:
            child = launcher.children[spec.name]
            assert child.process is not None
            environ = environ_of(child.process.pid)
            assert "FMCSA_NATS_PASSWORD" not in environ, spec.name
            assert environ.get("FMCSA_NATS_USER") == spec.bus_user, spec.name
            if spec.bus_user is None:
                assert "FMCSA_NATS_PASSWORD_FILE" not in environ
            else:
                assert environ["FMCSA_NATS_PASSWORD_FILE"] == str(bus_password_file(data_dir, spec.bus_user))
            leaked = [user for user, password in passwords.items() if password in "\0".join(environ.values())]
            assert leaked == [], f"{spec.name} has the password of {leaked} in its environment"

        token = mint(secret, role=Role.ADMIN, subject="bus-users-test")
        async with httpx.AsyncClient(
            base_url=launcher.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20
        ) as http:

            async def ready() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/ready")).status_code == 200
                return False

            await wait_until(ready, what="the gateway ready", within_s=60)
            assert (await http.post("/api/companies", json={"dot_number": "2847193"})).status_code == 201
            trigger = await http.post(
                "/api/sync/trigger", json={"dot_numbers": ["2847193"], "sources": ["csa"]}
            )
            assert trigger.status_code == 202, trigger.text
            request_id = trigger.json()["started"][0]["request_id"]

            async def synced() -> bool:
                items = (await http.get("/api/sync/log", params={"dot": "2847193"})).json()["items"]
                return any(i["request_id"] == request_id and i["status"] == "succeeded" for i in items)

            await wait_until(synced, what="the csa sync succeeded", within_s=60)
    finally:
        launcher.stop(grace_s=10)
    nats_log = (data_dir / "logs" / "nats-server.log").read_text()
    assert "Violation" not in nats_log, [line for line in nats_log.splitlines() if "Violation" in line][:5]

    again = Launcher(data_dir=data_dir, gateway_port=free_port(), services=["csa"])
    again.start()  # the csa service connects with the kept password, or the start fails
    try:
        assert bus_passwords(data_dir) == passwords
    finally:
        again.stop(grace_s=10)
    for path in (data_dir / "logs").iterdir():
        text = path.read_text(errors="replace")
        assert not [user for user, password in passwords.items() if password in text], path.name
