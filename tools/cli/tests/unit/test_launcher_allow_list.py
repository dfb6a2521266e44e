"""`up`'s webhook allow-list lets the notifier reach the sandbox's receiver and nothing else on loopback
(not the gateway, NATS or any other port of 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from fmcsa_alerts.addresses import check_addresses, parse_allow_list
from fmcsa_cli.launcher import Launcher


def test_up_allows_the_sandbox_receiver_port_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FMCSA_WEBHOOK_ALLOW_HOSTS", raising=False)
    launcher = Launcher(data_dir=tmp_path)
    launcher.nats = SimpleNamespace(url="nats://127.0.0.1:4222")  # type: ignore[assignment]  # no server
    env = launcher._environment()
    assert launcher.sandbox_url is not None
    port = urlsplit(launcher.sandbox_url).port
    assert port is not None
    allow = parse_allow_list(env["FMCSA_WEBHOOK_ALLOW_HOSTS"])
    assert check_addresses("127.0.0.1", ["127.0.0.1"], allow, port=port) is None
    for other in (launcher.gateway_port, 4222, port + 1, 5432):  # the gateway, NATS, a neighbour, PostgreSQL
        assert check_addresses("127.0.0.1", ["127.0.0.1"], allow, port=other) is not None
    assert check_addresses("127.0.0.2", ["127.0.0.2"], allow, port=port) is not None
