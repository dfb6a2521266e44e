from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmcsa_embedded import stop_process

Start = Callable[..., contextlib.AbstractContextManager[Any]]
SECRETS = {
    "FMCSA_SANDBOX_QCMOBILE_WEB_KEY": "sentinel-webkey-4242",
    "FMCSA_SANDBOX_SOCRATA_APP_TOKEN": "sentinel-token-4242",
    "FMCSA_SANDBOX_SAFERWEB_API_KEY": "sentinel-apikey-4242",
    "FMCSA_SANDBOX_SAFERWEB_LAPSED_KEYS": "sentinel-lapsed-4242",
}


def test_it_writes_its_state_file_stops_on_sigterm_with_0_and_logs_no_secret(
    own_sandbox: Start, tmp_path: Path
) -> None:
    state_file = tmp_path / "state" / "sandbox.json"
    env = {**SECRETS, "FMCSA_SANDBOX_STATE_FILE": str(state_file), "FMCSA_LOG_LEVEL": "DEBUG"}
    with own_sandbox(env) as sandbox, sandbox.client() as client:
        state = json.loads(state_file.read_text())
        assert state == {"url": sandbox.url, "pid": sandbox.process.pid}
        client.get(
            "/qc/services/carriers/2847193", params={"webKey": "sentinel-webkey-4242"}
        ).raise_for_status()
        assert (
            client.get("/qc/services/carriers/1", params={"webKey": "sentinel-wrong-4242"}).status_code == 404
        )
        client.get(
            "/resource/8mt8-2mdr.json", params={"$$app_token": "sentinel-token-4242", "dot_number": "1"}
        )
        client.get("/v2/usdot/snapshot/1", headers={"x-api-key": "sentinel-apikey-4242"}).raise_for_status()
        client.put("/_sandbox/faults", json={"csa_p_5xx": 0.5}).raise_for_status()
        client.post("/_sandbox/bump").raise_for_status()
        stats = client.get("/_sandbox/stats").text
        assert "4242" not in stats.replace("sentinel-", "")  # no secret's tail either
        assert stop_process(sandbox.process, grace_s=5) == 0
    assert not state_file.exists()
    log = sandbox.log.read_text()
    assert "sandbox_started" in log
    assert "data_version_bumped" in log
    assert "sandbox_stopped" in log
    for secret in (*SECRETS.values(), "sentinel-wrong-4242"):
        assert secret not in log
