"""The admin page's shell and fragments, the API documents, and the metrics."""

from __future__ import annotations

import re
from typing import Any

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import EVENT_TYPES, ChangeKind
from fmcsa_gateway.asyncapi import asyncapi_document
from fmcsa_runtime.tokens import Role


async def test_the_page_loads_only_local_assets(lone_gateway: Any) -> None:
    page = await lone_gateway.client.get("/")
    assert page.status_code == 200
    assert 'src="/static/htmx-2.0.11.min.js"' in page.text
    assert not re.search(r"(src|href)=\"https?://", page.text), "the page must fetch nothing from elsewhere"
    for asset in ("/static/htmx-2.0.11.min.js", "/static/app.js", "/static/app.css"):
        answer = await lone_gateway.client.get(asset)
        assert answer.status_code == 200, asset
    assert "htmx" in (await lone_gateway.client.get("/static/htmx-2.0.11.min.js")).text[:200]


async def test_swagger_ui_and_both_documents_are_served_locally(lone_gateway: Any) -> None:
    swagger = await lone_gateway.client.get("/schema")
    assert swagger.status_code == 200
    assert "/static/swagger-ui-5.35.0/swagger-ui-bundle.js" in swagger.text
    assert "cdn." not in swagger.text
    assert (
        await lone_gateway.client.get("/static/swagger-ui-5.35.0/swagger-ui-bundle.js")
    ).status_code == 200
    openapi = (await lone_gateway.client.get("/schema/openapi.json")).json()
    paths = set(openapi["paths"])
    assert {
        "/api/companies",
        "/api/companies/import",
        "/api/companies/{dot}",
        "/api/companies/{dot}/status",
        "/api/sync/log",
        "/api/sync/summary",
        "/api/sync/trigger",
        "/api/schedules",
        "/api/schedules/{source}",
        "/api/scheduler/status",
        "/api/events",
    } <= paths
    assert not any(p.startswith("/ui") for p in paths)
    assert openapi["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    trigger = openapi["paths"]["/api/sync/trigger"]["post"]
    assert {"202", "401", "403", "409", "422"} <= set(trigger["responses"])
    assert "application/problem+json" in trigger["responses"]["422"]["content"]
    importer = openapi["paths"]["/api/companies/import"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv", "multipart/form-data"} <= set(importer)
    asyncapi = (await lone_gateway.client.get("/asyncapi.json")).json()
    assert asyncapi["asyncapi"].startswith("3.")
    assert asyncapi == asyncapi_document(nats_url=lone_gateway.nats_url, version=asyncapi["info"]["version"])
    addresses = {c["address"] for c in asyncapi["channels"].values()}
    assert "fmcsa.evt.company_registered.{dot}" in addresses
    assert "fmcsa.evt.sync_requested.{source}.{dot}" in addresses
    assert "fmcsa.evt.source_synced.{source}.{dot}" in addresses
    assert {cls.__name__ for cls in EVENT_TYPES} <= set(asyncapi["components"]["schemas"])
    # the enums follow SourceKey and ChangeKind: a new source and its kinds appear in both documents
    sources = [s.value for s in SourceKey]
    assert asyncapi["components"]["schemas"]["SourceKey"]["enum"] == sources
    assert openapi["components"]["schemas"]["SourceKey"]["enum"] == sources
    assert openapi["components"]["schemas"]["ChangeKind"]["enum"] == [k.value for k in ChangeKind]
    assert {"authority", "insurance_cancellation_pending"} <= {*sources, *(k.value for k in ChangeKind)}


async def test_metrics_count_requests_and_published_events(lone_gateway: Any, bearer: Any) -> None:
    await lone_gateway.client.post("/api/companies", json={"dot_number": "9"}, headers=bearer(Role.ADMIN))
    text = (await lone_gateway.client.get("/metrics")).text
    assert 'fmcsa_gateway_events_published_total{type="company_registered"}' in text
    assert re.search(
        r'litestar_requests_total\{app_name="fmcsa_gateway",method="POST",path="/api/companies",'
        r'status_code="201"\} [0-9.]+',
        text,
    )


async def test_fragments_render_for_a_viewer(lone_gateway: Any, bearer: Any) -> None:
    viewer = bearer(Role.VIEWER, "vic")
    assert (await lone_gateway.client.get("/ui/whoami", headers=viewer)).json() == {
        "subject": "vic",
        "role": "viewer",
    }
    for path, needle in [
        ("/ui/summary", "companies"),
        ("/ui/companies", "No company yet."),
        ("/ui/companies?q=12", "no company matches 12"),
        ("/ui/companies?q=mc-123456", "no company matches mc-123456"),
        ("/ui/companies?q=1%27%20OR%201%3D1", "no company matches 1&#39; OR 1=1"),
        ("/ui/companies?risk=purple", "risk must be one of red, yellow, green, unknown"),
        ("/ui/companies?risk=red", "No company matches."),
        ("/ui/companies?cursor=garbage", "No company yet."),
        ("/ui/companies/12", "No company 12 is known yet."),
        ("/ui/carriers/12", "No carrier 12 is known"),
        ("/ui/schedules", 'id="schedule-csa"'),
        ("/ui/scheduler", "No scheduler has reported yet."),
    ]:
        answer = await lone_gateway.client.get(path, headers=viewer)
        assert answer.status_code == 200, (path, answer.text)
        assert needle in answer.text, (path, answer.text)
    assert (await lone_gateway.client.get("/ui/companies/12/row", headers=viewer)).status_code == 404
    assert (await lone_gateway.client.get("/ui/carriers/12/violations", headers=viewer)).status_code == 404
    assert (await lone_gateway.client.get("/ui/carriers/x1", headers=viewer)).status_code == 422


async def test_the_carrier_page_shell_is_public_at_its_own_url(lone_gateway: Any) -> None:
    """`/carriers/{dot}` answers the page shell without a token (the page asks for one), for a
    canonical DOT; anything else there is a 404. The shell holds no data."""
    shell = await lone_gateway.client.get("/carriers/0012")
    assert shell.status_code == 200
    assert 'data-carrier="12"' in shell.text
    assert 'id="sign-in"' in shell.text
    assert (await lone_gateway.client.get("/carriers/abc")).status_code == 404
    assert (await lone_gateway.client.get("/ui/carriers/12")).status_code == 401


async def test_health_and_readiness(lone_gateway: Any) -> None:
    assert (await lone_gateway.client.get("/health")).json() == {"status": "ok"}
    ready = (await lone_gateway.client.get("/ready")).json()
    assert ready == {"status": "ready", "nats": True, "status_view": True}


async def test_the_page_previews_a_csv_import_then_registers_it(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    """The preview is a dry run (counts, each refused row with its line and reason, nothing published);
    `mode=register` imports as the API does. Admin only, like the API's import."""
    admin, client = bearer(Role.ADMIN, "ada"), gateway.client
    upload = {"file": ("companies.csv", b"dot_number,name\n7,Seven\n8,Eight\nabc,Bad\n8,Again\n", "text/csv")}

    preview = await client.post("/ui/companies/import", files=upload, data={"mode": "preview"}, headers=admin)
    assert preview.status_code == 200, preview.text
    for needle in ('data-registered="no"', 'data-accepted="2"', 'data-duplicate="1"', 'data-invalid="1"'):
        assert needle in preview.text
    assert 'data-line="4"' in preview.text
    assert 'data-new="8"' in preview.text
    assert 'id="import-register"' in preview.text
    assert (await client.get("/api/companies/8/status", headers=admin)).status_code == 404

    done = await client.post("/ui/companies/import", files=upload, data={"mode": "register"}, headers=admin)
    assert done.status_code == 200, done.text
    assert 'data-registered="yes"' in done.text
    assert 'data-accepted="2"' in done.text
    assert done.headers["hx-trigger"] == "companies-changed"

    async def registered() -> bool:
        return (await client.get("/api/companies/8/status", headers=admin)).status_code == 200

    await wait_until(registered, what="company 8 registered by the import", within_s=10)

    empty = {"file": ("empty.csv", b"  \n", "text/csv")}
    refused = await client.post("/ui/companies/import", files=empty, data={"mode": "preview"}, headers=admin)
    assert refused.status_code == 422
    assert "choose a CSV file" in refused.text
    viewer = bearer(Role.VIEWER, "vic")
    assert (await client.post("/ui/companies/import", files=upload, headers=viewer)).status_code == 403
