"""The projector's lag on /metrics: the events after its position and the oldest one's age, measured
every second. While a test holds the store's position row the projector cannot commit, so the events it
is sent wait and both figures rise; once the lock is released it catches up and both are 0 again.

PostgreSQL only: SQLite's lock would be waited out inside the projector's event loop (the status store
calls sqlite3 synchronously, for speed), which would stall its /metrics too."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from sqlalchemy.engine import make_url

from fmcsa_embedded import Child, free_port
from fmcsa_events.bus import Bus
from fmcsa_events.models import CompanyRegistered
from fmcsa_events.topology import Topology, declare


def _gauge(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", text, flags=re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_the_projector_exports_its_lag_while_it_cannot_commit_and_zero_once_caught_up(
    fresh_nats_url: str, tmp_path: Path, wait_until: Any, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only (module docstring)")
    nc = await nats.connect(fresh_nats_url)
    port = free_port()
    env = {
        "FMCSA_NATS_URL": fresh_nats_url,
        "FMCSA_DATA_DIR": str(tmp_path),
        "FMCSA_STATUS_DATABASE_URL": database_url,
        "FMCSA_STATUS_HTTP_PORT": str(port),
        "FMCSA_STATUS_BATCH_WAIT_MS": "5",
        "FMCSA_LOG_JSON": "true",
    }
    child = Child("status", [sys.executable, "-m", "fmcsa_status"], env, log_path=tmp_path / "status.log")
    metrics = ""

    async def scrape(path: str = "/metrics") -> httpx.Response | None:
        async with httpx.AsyncClient(timeout=5) as http:
            try:
                return await http.get(f"http://127.0.0.1:{port}{path}")
            except httpx.HTTPError:
                return None

    async def gauges(**wanted: float) -> bool:
        nonlocal metrics
        answer = await scrape()
        metrics = answer.text if answer is not None else ""
        return all(_gauge(metrics, f"fmcsa_status_{name}") == value for name, value in wanted.items())

    try:
        js = nc.jetstream()
        await declare(js, Topology())
        bus = Bus(js, producer="test")
        child.start()

        async def ready() -> bool:
            answer = await scrape("/ready")
            return answer is not None and answer.status_code == 200

        await wait_until(ready, what="the projector ready (its store made)", within_s=30)
        url = make_url(database_url)
        lock = await asyncpg.connect(
            url.set(drivername="postgresql", query={}).render_as_string(hide_password=False),
            server_settings={"search_path": str(url.query["search_path"])},
        )
        locked = lock.transaction()
        await locked.start()
        # the projector's next commit starts with SELECT ... FOR UPDATE of this row: it waits
        await lock.execute("SELECT seq FROM status_position WHERE id = 1 FOR UPDATE")
        try:
            last = 0
            for dot in ("1", "2", "3"):
                last = (await bus.publish(CompanyRegistered(dot=dot))).seq
            await wait_until(lambda: gauges(lag_events=3.0), what="a lag of 3 events", within_s=30)
            await wait_until(_lag_over_a_second(gauges_text=lambda: metrics, gauges=gauges), what="its age")
        finally:
            await locked.rollback()
            await lock.close()
        await wait_until(
            lambda: gauges(position=float(last), lag_events=0.0, lag_seconds=0.0),
            what="the projector caught up with no lag",
            within_s=30,
        )
    finally:
        child.stop(grace_s=10)
        await nc.close()


def _lag_over_a_second(*, gauges_text: Any, gauges: Any) -> Any:
    async def check() -> bool:
        await gauges()
        age = _gauge(gauges_text(), "fmcsa_status_lag_seconds")
        return age is not None and age > 1.0

    return check
