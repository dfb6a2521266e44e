"""Operational behaviour of the service processes (issue 23), each on real processes:

- started while NATS is unreachable, a service serves `/health` (200) at once, `/ready` says not ready,
  it logs one line per connect attempt with back-off and no traceback, and a stop signal ends it within
  its grace period;
- a service (status, a source, the gateway) outlives a kill -9 and restart of the broker: `/ready` says
  503 while it is down and 200 once it is back, one `nats_reconnecting` line per attempt with back-off,
  and a stop signal while the broker is down again ends it within its grace period, exit 0;
- an idle notifier on a real nats-server logs no warning across many fetch timeouts (the issue's "no
  warning for 10 minutes", emulated with a 5 ms fetch timeout: hundreds of idle fetches in seconds);
- every entry point answers `--help` with its settings and exits 0 without starting (no port opened),
  and refuses an unknown argument (exit 2);
- JSON log lines carry no terminal colour codes, from uvicorn included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from fmcsa_embedded import NatsServer, free_port, stop_process

pytestmark = pytest.mark.system

START_WITHIN_S = 90.0  # importing a service takes seconds on a loaded machine; not a performance bound


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")}
    return {**env, "FMCSA_LOG_JSON": "true", "PYTHONUNBUFFERED": "1", **extra}


class Service:
    def __init__(self, module: str, env: dict[str, str], log_path: Path, port: int) -> None:
        self.log_path = log_path
        self.port = port
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stop_process signals the process group
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0, trust_env=False)

    def wait_for_health(self) -> None:
        self._wait_for_200("/health")

    def wait_until_ready(self) -> None:
        self._wait_for_200("/ready")

    def _wait_for_200(self, path: str) -> None:
        deadline = time.monotonic() + START_WITHIN_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if self.http.get(path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # poll interval while the process starts and connects
        raise AssertionError(f"{path} never answered 200:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    def close(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            stop_process(self.process, grace_s=5)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.close()


@pytest.mark.parametrize(
    ("module", "port_env", "grace_env", "stop_signal"),
    [
        ("fmcsa_status", "FMCSA_STATUS_HTTP_PORT", "FMCSA_STATUS_GRACE_S", signal.SIGTERM),
        ("fmcsa_source_csa", "FMCSA_CSA_HTTP_PORT", "FMCSA_CSA_GRACE_S", signal.SIGINT),
        ("fmcsa_gateway", "FMCSA_GATEWAY_PORT", "FMCSA_GATEWAY_GRACE_S", signal.SIGTERM),
    ],
)
def test_a_service_without_nats_is_alive_not_ready_quiet_and_stops_within_its_grace(
    module: str,
    port_env: str,
    grace_env: str,
    stop_signal: signal.Signals,
    tmp_path: Path,
    services: list[Service],
) -> None:
    closed_port = free_port()  # nothing listens there: every connect is refused
    port = free_port()
    grace_s = 2.0
    service = Service(
        module,
        _clean_env(
            FMCSA_NATS_URL=f"nats://127.0.0.1:{closed_port}",
            FMCSA_DATA_DIR=str(tmp_path),
            **{port_env: str(port), grace_env: str(grace_s)},
        ),
        tmp_path / "service.log",
        port,
    )
    services.append(service)
    service.wait_for_health()
    first_health = time.monotonic()
    assert service.http.get("/ready").status_code == 503
    time.sleep(3.0)  # the window the complaint was seen in: what the service logs while NATS is away
    assert service.http.get("/health").status_code == 200
    ready = service.http.get("/ready")
    assert ready.status_code == 503, ready.text
    window_s = time.monotonic() - first_health

    service.process.send_signal(stop_signal)
    signalled = time.monotonic()
    try:
        code = service.process.wait(timeout=grace_s + 1.0)  # the grace, plus a margin for interpreter exit
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {grace_s + 1.0}s after {stop_signal.name}:\n{service.log()}")
    took = time.monotonic() - signalled
    log = service.log()
    lines = service.lines()  # every line is JSON
    attempts = [line for line in lines if line["event"] == "stamina.retry_scheduled"]
    print(f"{module}: {len(attempts)} connect attempts logged over {window_s:.1f}s; stopped in {took:.2f}s")
    assert code == 0, log
    assert "Traceback" not in log
    assert 1 <= len(attempts) <= 8, log  # back-off: 0.5 s doubling, not a line every 0.5 s forever
    assert all("NatsUnreachable(ConnectionRefusedError" in str(a["caused_by"]) for a in attempts)
    waits = [float(str(a["wait_for"])) for a in attempts]
    assert waits == sorted(waits)  # the waits grow: jitter (0.5 s) is no larger than a step


def _wait_for_status(service: Service, path: str, status: int, *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert service.process.poll() is None, service.log()
        with contextlib.suppress(httpx.TransportError):
            if service.http.get(path).status_code == status:
                return
        time.sleep(0.1)  # poll interval while the connection goes or comes back
    raise AssertionError(f"{path} never answered {status}:\n{service.log()}")


@pytest.mark.parametrize(
    ("module", "port_env", "grace_env"),
    [
        ("fmcsa_status", "FMCSA_STATUS_HTTP_PORT", "FMCSA_STATUS_GRACE_S"),
        ("fmcsa_source_csa", "FMCSA_CSA_HTTP_PORT", "FMCSA_CSA_GRACE_S"),
        ("fmcsa_gateway", "FMCSA_GATEWAY_PORT", "FMCSA_GATEWAY_GRACE_S"),
    ],
)
def test_a_service_rides_out_a_broker_restart_and_stops_within_its_grace_while_the_broker_is_down(
    module: str,
    port_env: str,
    grace_env: str,
    tmp_path: Path,
    nats_server: NatsServer,
    services: list[Service],
) -> None:
    port = free_port()
    grace_s = 3.0
    service = Service(
        module,
        _clean_env(
            FMCSA_NATS_URL=nats_server.url,
            FMCSA_DATA_DIR=str(tmp_path),
            **{port_env: str(port), grace_env: str(grace_s)},
        ),
        tmp_path / "service.log",
        port,
    )
    services.append(service)
    service.wait_until_ready()

    nats_server.kill()  # kill -9 of the broker, then the same server again on the same port and store
    _wait_for_status(service, "/ready", 503, within_s=15)
    time.sleep(2.0)  # the broker stays down: the service retries meanwhile
    nats_server.start()
    _wait_for_status(service, "/ready", 200, within_s=START_WITHIN_S)

    nats_server.kill()  # down again, and a stop signal while the service is reconnecting
    _wait_for_status(service, "/ready", 503, within_s=15)
    service.process.send_signal(signal.SIGTERM)
    try:
        code = service.process.wait(timeout=grace_s + 1.5)  # the grace, plus a margin for interpreter exit
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {grace_s + 1.5}s after SIGTERM:\n{service.log()}")
    log = service.log()
    lines = service.lines()
    attempts = [line for line in lines if line["event"] == "nats_reconnecting"]
    assert code == 0, log
    assert "Traceback" not in log
    assert [line["event"] for line in lines].count("nats_reconnected") == 1, log
    assert all(line["connection"] for line in attempts)
    outages: list[list[float]] = []  # the waits of each outage's attempts; attempt 1 starts a new one
    for line in attempts:
        if line["attempt"] == 1:
            outages.append([])
        outages[-1].append(float(str(line["wait_s"])))
    assert len(outages) == 2, log
    for waits in outages:  # back-off: immediate, then 0.5 s doubling (jitter below a step), not a fixed pace
        assert waits[0] == 0.0
        assert waits == sorted(waits), waits


def test_an_idle_notifier_logs_no_warning_over_hundreds_of_fetch_timeouts(
    tmp_path: Path, fresh_nats_url: str, services: list[Service]
) -> None:
    port = free_port()
    fetch_timeout_s = 0.005
    service = Service(
        "fmcsa_notifier",
        _clean_env(
            FMCSA_NATS_URL=fresh_nats_url,
            FMCSA_DATA_DIR=str(tmp_path),
            FMCSA_NOTIFIER_HTTP_PORT=str(port),
            FMCSA_NOTIFIER_FETCH_TIMEOUT_S=str(fetch_timeout_s),
            FMCSA_WEBHOOK_SECRET_KEY=Fernet.generate_key().decode(),
        ),
        tmp_path / "notifier.log",
        port,
    )
    services.append(service)
    service.wait_until_ready()
    time.sleep(4.0)  # idle: every fetch times out; at 5 ms that is hundreds of cycles
    assert service.http.get("/ready").status_code == 200
    code = stop_process(service.process, grace_s=10)
    log = service.log()
    warnings = [line for line in service.lines() if line["level"] in ("warning", "error", "critical")]
    assert code == 0, log
    assert warnings == [], warnings[:3]
    assert "Traceback" not in log


ENTRY_POINTS = [
    ("fmcsa_status", "FMCSA_STATUS_BATCH_SIZE"),
    ("fmcsa_notifier", "FMCSA_NOTIFIER_FETCH_TIMEOUT_S"),
    ("fmcsa_scheduler", "FMCSA_SCHEDULER_HTTP_PORT"),
    ("fmcsa_gateway", "FMCSA_GATEWAY_PORT"),
    ("fmcsa_source_csa", "FMCSA_CSA_WEB_KEY"),
    ("fmcsa_source_violations", "FMCSA_VIOLATIONS_APP_TOKEN"),
    ("fmcsa_source_inspections", "FMCSA_INSPECTIONS_API_KEY"),
    ("fmcsa_sandbox", "FMCSA_SANDBOX_PORT"),
    ("fmcsa_status.rebuild", "FMCSA_STATUS_REBUILD_BATCH_SIZE"),
]
"""Every `python -m` entry point, which is also what each console script of the pyprojects runs."""


def _console_script(module: str) -> Path:
    name = {"fmcsa_status.rebuild": "fmcsa-status-rebuild"}.get(module, module.replace("_", "-"))
    return Path(sys.executable).parent / name


@pytest.mark.parametrize(("module", "own_setting"), ENTRY_POINTS)
def test_every_entry_point_answers_help_with_its_settings_and_starts_nothing(
    module: str, own_setting: str, tmp_path: Path
) -> None:
    port = free_port()
    # were it to start, it would open this port (the gateway's and the sandbox's too) and make a data dir
    env = _clean_env(
        FMCSA_DATA_DIR=str(tmp_path / "data"),
        FMCSA_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        **{
            name: str(port)
            for name in (
                "FMCSA_STATUS_HTTP_PORT",
                "FMCSA_NOTIFIER_HTTP_PORT",
                "FMCSA_SCHEDULER_HTTP_PORT",
                "FMCSA_GATEWAY_PORT",
                "FMCSA_CSA_HTTP_PORT",
                "FMCSA_VIOLATIONS_HTTP_PORT",
                "FMCSA_INSPECTIONS_HTTP_PORT",
                "FMCSA_SANDBOX_PORT",
            )
        },
    )
    script = _console_script(module)
    assert script.exists(), f"console script {script} is missing"
    for argv, flag in (([sys.executable, "-m", module], "--help"), ([str(script)], "-h")):
        answer = subprocess.run([*argv, flag], env=env, capture_output=True, text=True, timeout=120)
        assert answer.returncode == 0, answer.stderr
        out = answer.stdout
        assert out.startswith("usage: "), out
        for shared in ("FMCSA_NATS_URL", "FMCSA_LOG_JSON", own_setting):
            assert shared in out, f"{shared} missing from {module} {flag}:\n{out}"
        assert "default:" in out
        assert answer.stderr == ""  # nothing was logged: nothing started
        assert not (tmp_path / "data").exists()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0, trust_env=False)
    wrong = subprocess.run(
        [sys.executable, "-m", module, "--no-such-option"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2, wrong.stderr
    assert "unrecognized arguments: --no-such-option" in wrong.stderr


def test_json_log_lines_carry_no_colour_codes_from_uvicorn(
    tmp_path: Path, fresh_nats_url: str, services: list[Service]
) -> None:
    port = free_port()
    service = Service(
        "fmcsa_scheduler",
        _clean_env(
            FMCSA_NATS_URL=fresh_nats_url,
            FMCSA_DATA_DIR=str(tmp_path),
            FMCSA_SCHEDULER_HTTP_PORT=str(port),
        ),
        tmp_path / "scheduler.log",
        port,
    )
    services.append(service)
    service.wait_until_ready()
    code = stop_process(service.process, grace_s=10)
    log = service.log()
    assert code == 0, log
    lines = service.lines()  # each line is one JSON object: nothing printed by a handler of its own
    loggers = {str(line.get("logger")) for line in lines}
    assert "uvicorn.error" in loggers
    assert "fmcsa_runtime.service" in loggers, loggers
    assert "\x1b" not in log
    assert "color_message" not in log


def test_a_startup_that_fails_is_logged_once_and_exits_1(
    tmp_path: Path, fresh_nats_url: str, services: list[Service]
) -> None:
    port = free_port()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    service = Service(
        "fmcsa_status",
        _clean_env(
            FMCSA_NATS_URL=fresh_nats_url,
            FMCSA_DATA_DIR=str(tmp_path),
            FMCSA_STATUS_HTTP_PORT=str(port),
            # a database under a file: it cannot be opened, once NATS is connected
            FMCSA_STATUS_DATABASE_URL=f"sqlite:///{blocker}/status.sqlite3",
        ),
        tmp_path / "status.log",
        port,
    )
    services.append(service)
    try:
        code = service.process.wait(timeout=START_WITHIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running:\n{service.log()}")
    failures = [line for line in service.lines() if line["event"] == "startup_failed"]
    assert code == 1, service.log()
    assert len(failures) == 1, service.log()
