"""The OpenAPI document as the gateway enforces it: Litestar generates it, this module finishes it.

Litestar's generator drops rules the routes enforce: constraints inside list items and optional
fields (each DOT of a trigger), `minimum: 0`, `exclusiveMinimum`, `additionalProperties: false` of a
model that forbids extra fields, and it documents a 400 in its own shape that never happens. So:

- Every request body model (the `Request` bases of `schemas` and `alert_schemas`) is documented with
  pydantic's own validation schema, which carries every field rule, the DOT pattern
  (`fmcsa_events.identifiers.DotNumber`), the no-control-character rule of `SafeText`, and the model
  rules written into it (`PutSchedule`'s one-of).
- Limits that are settings are written in: the trigger's `maxItems` is FMCSA_GATEWAY_TRIGGER_MAX_DOTS.
- Every error answer is `application/problem+json` with the one `Problem` schema (`problems.py`).

`FinishedJsonRenderPlugin` serves the finished document at `/schema/openapi.json` (Swagger UI reads it
there). `services/gateway/tests/unit/test_openapi.py` checks it; schemathesis runs against it.
"""

from __future__ import annotations

import copy
from typing import Any

from litestar.connection import Request as HttpRequest
from litestar.openapi.plugins import JsonRenderPlugin
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from fmcsa_gateway import alert_schemas, schemas
from fmcsa_gateway.problems import PROBLEM_JSON, Problem

SCHEMAS = "#/components/schemas/"


def request_models() -> list[type[BaseModel]]:
    """Every request body model of the API (subclasses of the two `Request` bases, recursively)."""
    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [schemas.Request, alert_schemas.Request]
    while pending:
        for model in pending.pop().__subclasses__():
            found.append(model)
            pending.append(model)
    return sorted(set(found), key=lambda m: m.__name__)


def finish_openapi(document: dict[str, Any], *, trigger_max_dots: int) -> dict[str, Any]:
    """A copy of Litestar's document with the request schemas, limits and error answers the API has."""
    finished = copy.deepcopy(document)
    components = finished.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [*request_models(), Problem]
    _, definitions = models_json_schema([(m, "validation") for m in models], ref_template=SCHEMAS + "{model}")
    components.update(definitions.get("$defs", {}))
    dots = components["TriggerSync"]["properties"]["dot_numbers"]
    for branch in dots.get("anyOf", [dots]):
        if branch.get("type") == "array":
            branch["maxItems"] = trigger_max_dots
    problem = {"schema": {"$ref": SCHEMAS + Problem.__name__}}
    for path in finished.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for status, answer in operation.get("responses", {}).items():
                if int(status) >= 400:
                    answer["content"] = {PROBLEM_JSON: problem}
    return finished


class FinishedJsonRenderPlugin(JsonRenderPlugin):
    """Litestar's `/openapi.json` render plugin, serving `finish_openapi` of the generated document."""

    def __init__(self, *, trigger_max_dots: int, path: str = "/openapi.json") -> None:
        super().__init__(path=path)
        self._trigger_max_dots = trigger_max_dots
        self._rendered: bytes | None = None

    def render(self, request: HttpRequest[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:  # the document is the same for every request
            finished = finish_openapi(openapi_schema, trigger_max_dots=self._trigger_max_dots)
            self._rendered = self.render_json(request, finished)
        return self._rendered
