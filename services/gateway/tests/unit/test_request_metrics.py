"""The gateway's request metrics (`app.TemplatePathMetrics`, Litestar's Prometheus middleware with its
label children kept) count as Litestar's does: the same families and labels (the path is the route's
template), requests per status, durations, the in-progress gauge back at 0, errors only for a 5xx.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Litestar, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter
from litestar.plugins.prometheus import PrometheusConfig
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from fmcsa_gateway.app import TemplatePathMetrics


@get("/items/{name:str}", sync_to_thread=False)
def item(name: Annotated[str, PathParameter()]) -> dict[str, str]:
    if name == "missing":
        raise NotFoundException("no such item")
    if name == "broken":
        raise RuntimeError("broken")
    return {"name": name}


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"app_name": "unit", **labels})


def test_requests_are_counted_per_route_template_and_status() -> None:
    config = PrometheusConfig(
        app_name="unit", prefix="unit_metrics", group_path=True, middleware_class=TemplatePathMetrics
    )
    app = Litestar(route_handlers=[item], middleware=[config.middleware])
    with TestClient(app) as client:
        for name in ("a", "b", "a", "missing", "broken"):
            client.get(f"/items/{name}")
    route = {"method": "GET", "path": "/items/{name}"}
    assert sample("unit_metrics_requests_total", status_code="200", **route) == 3
    assert sample("unit_metrics_requests_total", status_code="404", **route) == 1
    assert sample("unit_metrics_requests_total", status_code="500", **route) == 1
    assert sample("unit_metrics_request_duration_seconds_count", status_code="200", **route) == 3
    assert (sample("unit_metrics_request_duration_seconds_sum", status_code="200", **route) or 0) > 0
    assert sample("unit_metrics_requests_in_progress", status_code="200", **route) == 0
    assert sample("unit_metrics_requests_error_total", status_code="500", **route) == 1
    assert sample("unit_metrics_requests_error_total", status_code="404", **route) is None
    assert sample("unit_metrics_requests_error_total", status_code="200", **route) is None
