from __future__ import annotations

import random

from litestar.testing import TestClient

from fmcsa_sandbox.app import create_app
from fmcsa_sandbox.settings import Settings


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_app_takes_its_clocks_and_dice_from_the_caller() -> None:
    wall, monotonic = FakeClock(1762265528.317), FakeClock(50.0)
    app = create_app(Settings(csa_rate_per_s=2), clock=wall, monotonic=monotonic, rng=random.Random(5))
    with TestClient(app) as client:
        params = {"webKey": "sandbox-webkey"}
        first = client.get("/qc/services/carriers/2847193", params=params)
        assert first.json()["retrievalDate"] == "2025-11-04T14:12:08.317+0000"
        assert client.get("/qc/services/carriers/2847193/basics", params=params).status_code == 200
        refused = client.get("/qc/services/carriers/2847193", params=params)
        assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
        monotonic.now += 0.5  # one slot drains at 2/s
        assert client.get("/qc/services/carriers/2847193", params=params).status_code == 200
        stats = client.get("/_sandbox/stats").json()["sources"]["csa"]
        assert stats["per_second"] == {"1762265528": 3}
        assert (stats["requests"], stats["served_429"]) == (4, 1)


def test_importing_the_app_module_builds_nothing() -> None:
    import fmcsa_sandbox.app as module

    assert not [
        name for name, value in vars(module).items() if type(value).__name__ in ("Litestar", "Settings")
    ]
