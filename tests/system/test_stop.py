"""Every service stops on SIGTERM within its grace period and exits 0 (issue 3: graceful stop).

Each service runs alone through `up`'s launcher, on a nats-server from the wheel. A service that holds
the stop past its grace (as the notifier once did, its pull subscription keeping the connection's drain
waiting) is SIGKILLed by `stop_process` and shows as a non-zero exit code here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fmcsa_cli.launcher import ALL_SERVICES, Launcher
from fmcsa_embedded import free_port

pytestmark = pytest.mark.system

GRACE_S = 10.0  # each service's default FMCSA_<SERVICE>_GRACE_S


def test_every_service_exits_0_on_sigterm_within_its_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("FMCSA_") and key != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    launcher = Launcher(data_dir=tmp_path / "data", gateway_port=free_port())
    launcher.start()
    stops: dict[str, tuple[int | None, float]] = {}
    try:
        for spec in reversed(ALL_SERVICES):  # the gateway first, the sandbox last, as `up` stops them
            child = launcher.children.pop(spec.name)
            started = time.monotonic()
            code = child.stop(grace_s=GRACE_S)
            stops[spec.name] = (code, time.monotonic() - started)
    finally:
        launcher.stop()
    print({name: f"exit {code} in {took:.1f}s" for name, (code, took) in stops.items()})
    slow = {
        name: (launcher.logs_dir / f"{name}.log").read_text(errors="replace")[-1500:]
        for name, (code, took) in stops.items()
        if code != 0 or took >= GRACE_S
    }
    assert slow == {}, f"not stopped cleanly within {GRACE_S}s: {stops}"
