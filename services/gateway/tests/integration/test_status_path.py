"""The status GET's direct path (`fmcsa_gateway.status_path`) answers only what the route would answer
200, with the route's bytes and metrics; every refused token (expired, even one accepted a moment
before; signed with another secret; of an unknown role; another scheme; none) still gets Litestar's 401.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from fmcsa_events.consume import Delivered
from fmcsa_events.decoder import decode, encode
from fmcsa_events.envelope import envelope_for
from fmcsa_events.models import CompanyRegistered
from fmcsa_events.subjects import subject_for
from fmcsa_gateway.app import create_app
from fmcsa_gateway.settings import Settings
from fmcsa_gateway.status_path import STATUS_TEMPLATE, StatusPath
from fmcsa_runtime.tokens import ISSUER, Role, mint
from fmcsa_status.store import Applied, StatusStore

PATH = "/api/companies/1001/status"


def _registered(dot: str) -> Delivered:
    event = CompanyRegistered(dot=dot, name="Direct Path LLC", registered_by="admin")
    envelope = envelope_for(event, producer="test", occurred_at=datetime(2026, 12, 1, tzinfo=UTC))
    headers, data = envelope.to_headers(), encode(event)
    return Delivered(1, subject_for(event), headers, data, decode(headers, data))


def _forged(secret: str, **claims: Any) -> str:
    now = datetime.now(UTC)
    base = {"sub": "x", "role": "viewer", "iss": ISSUER, "iat": int(now.timestamp())}
    return jwt.encode({**base, "exp": int((now + timedelta(hours=1)).timestamp()), **claims}, secret)


def _ok_count() -> float:
    labels = {"app_name": "fmcsa_gateway", "method": "GET", "path": STATUS_TEMPLATE, "status_code": "200"}
    return REGISTRY.get_sample_value("litestar_requests_total", labels) or 0.0


async def test_only_a_verified_viewer_of_a_known_company_takes_the_direct_path(
    fresh_nats_url: str, database_url: str, jwt_secret: str, bearer: Any, tmp_path: Path
) -> None:
    store = await StatusStore.connect(database_url)
    try:
        assert isinstance(await store.apply([_registered("1001")], believed=0, dead_letter=None), Applied)
    finally:
        await store.close()
    settings = Settings(
        nats_url=fresh_nats_url, data_dir=tmp_path, status_database_url=database_url, jwt_secret=jwt_secret
    )
    shell = create_app(settings)
    direct = shell.app.asgi_handler
    assert isinstance(direct, StatusPath)
    async with AsyncTestClient(shell, timeout=60) as client:
        viewer = bearer(Role.VIEWER)
        before = _ok_count()
        fast = await client.get(PATH, headers=viewer)
        assert fast.status_code == 200, fast.text
        assert direct.answered == 1
        # the route's own answer (Litestar alone): the same, byte for byte, and counted alike
        shell.app.asgi_handler = direct.app
        routed = await client.get(PATH, headers=viewer)
        shell.app.asgi_handler = direct
        assert routed.status_code == 200
        assert routed.content == fast.content
        assert [h for h in routed.headers.multi_items() if h[0] != "date"] == [
            h for h in fast.headers.multi_items() if h[0] != "date"
        ]
        assert _ok_count() == before + 2  # both under the route's template
        # two Authorization headers: left to Litestar, which refuses them
        twice = await client.get(PATH, headers=[("authorization", viewer["Authorization"])] * 2)
        assert twice.status_code == 401
        assert direct.answered == 1

        # a token accepted a moment ago is refused from its expiry on (checked on every use)
        short = {
            "Authorization": "Bearer "
            + mint(jwt_secret, role=Role.VIEWER, subject="s", ttl=timedelta(seconds=2))
        }
        assert (await client.get(PATH, headers=short)).status_code == 200
        assert direct.answered == 2
        await asyncio.sleep(2.1)  # past the token's 2 s lifetime: expiry is a clock, no condition to await
        refused_in_time = await client.get(PATH, headers=short)
        no_token = await client.get(PATH)
        for authorization in [
            "Bearer "
            + mint(jwt_secret, role=Role.VIEWER, subject="late", now=datetime.now(UTC) - timedelta(days=40)),
            "Bearer " + mint("another-secret-of-at-least-32-characters", role=Role.ADMIN, subject="mallory"),
            "Bearer " + _forged(jwt_secret, role="root"),
            "Basic " + mint(jwt_secret, role=Role.VIEWER, subject="basic"),
            "Bearer not.a.token",
        ]:
            refused = await client.get(PATH, headers={"Authorization": authorization})
            assert refused.status_code == 401, (authorization, refused.text)
            assert refused.headers["www-authenticate"] == "Bearer"
        assert refused_in_time.status_code == 401
        assert no_token.status_code == 401
        assert (await client.get("/api/companies/4242/status", headers=viewer)).status_code == 404
        assert (await client.get("/api/companies/12x/status", headers=viewer)).status_code == 422
        assert direct.answered == 2  # none of these was answered by the direct path
