"""The served OpenAPI document carries the rules the routes enforce and the answers they give; the
OPTIONS answers list every method of their path. schemathesis checks the same document against the
running gateway (tests/integration/test_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from litestar.testing import TestClient

from fmcsa_events.identifiers import DOT_PATTERN
from fmcsa_events.models import RULE_NAME_PATTERN
from fmcsa_gateway.app import create_app
from fmcsa_gateway.settings import Settings

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def served() -> tuple[dict[str, Any], TestClient[Any]]:
    app = create_app(Settings(jwt_secret="openapi-unit-test-secret-0123456789abcdef", trigger_max_dots=250))
    client = TestClient(app.app)  # the Litestar app, not started: the documents need no connection
    return client.get("/schema/openapi.json").json(), client


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in document["paths"].items() for m, op in item.items() if m in METHODS]


def _body_schema(document: dict[str, Any], name: str) -> Any:
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    )


def test_every_error_answer_is_a_problem_document(served: tuple[dict[str, Any], Any]) -> None:
    document, _ = served
    errors = 0
    for path, method, operation in _operations(document):
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert answer["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
    assert errors > 50
    trigger = document["paths"]["/api/sync/trigger"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "422", "429"} <= set(trigger)


def test_dot_and_rule_name_parameters_carry_their_patterns(served: tuple[dict[str, Any], Any]) -> None:
    document, _ = served
    seen = {"dot": 0, "name": 0}
    for _, _, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in seen:
                seen[parameter["name"]] += 1
                wanted = DOT_PATTERN if parameter["name"] == "dot" else RULE_NAME_PATTERN
                assert parameter["schema"]["pattern"] == wanted, parameter
    assert seen["dot"] >= 6
    assert seen["name"] >= 4


def test_request_bodies_refuse_what_the_routes_refuse(served: tuple[dict[str, Any], Any]) -> None:
    document, _ = served
    trigger = _body_schema(document, "TriggerSync")
    assert trigger.is_valid({"dot_numbers": ["2847193"], "sources": ["csa"]})
    assert not trigger.is_valid({"dot_numbers": ["0"]})
    assert not trigger.is_valid({"dot_numbers": [""]})
    assert not trigger.is_valid({"dot_numbers": [str(n) for n in range(1, 252)]})  # the setting: 250
    assert not trigger.is_valid({"dot_numbers": [], "extra": 1})
    register = _body_schema(document, "RegisterCompany")
    assert register.is_valid({"dot_number": "7", "name": "Acme"})
    assert not register.is_valid({"dot_number": "7", "name": "line\nbreak"})
    schedule = _body_schema(document, "PutSchedule")
    assert schedule.is_valid({"interval_minutes": 60})
    assert schedule.is_valid({"cron": "0 */6 * * *"})
    assert schedule.is_valid({"cron": "*/15 * * * 1,2"})
    assert not schedule.is_valid({"interval_minutes": 60, "cron": "0 * * * *"})
    assert not schedule.is_valid({})
    assert not schedule.is_valid({"cron": "* * * * *"})  # every minute: the scheduler refuses it
    rule = _body_schema(document, "PutAlertRule")
    good = {"kinds": ["crashes_added"], "destinations": [{"url": "https://hooks.acme-logistics.com/x"}]}
    assert rule.is_valid(good)
    assert not rule.is_valid({**good, "dots": ["00"]})
    assert not rule.is_valid({**good, "conditions": {"subjects": ["Not A Token"]}})
    assert not rule.is_valid({**good, "conditions": {"delta_at_least": 0}})
    assert not rule.is_valid({**good, "destinations": [{"url": "ftp://example.org/x"}]})


def test_options_lists_every_method_of_its_path(served: tuple[dict[str, Any], TestClient[Any]]) -> None:
    document, client = served
    samples = {"{dot}": "2847193", "{name}": "rule", "{source}": "csa", "{delivery_id}": "0" * 32}
    for path, item in document["paths"].items():
        concrete = path
        for placeholder, value in samples.items():
            concrete = concrete.replace(placeholder, value)
        answer = client.options(concrete)
        allowed = {m.strip() for m in answer.headers["allow"].split(",")}
        assert {m.upper() for m in item if m in METHODS} | {"OPTIONS"} == allowed, path


def test_the_list_routes_document_their_exports(served: tuple[dict[str, Any], Any]) -> None:
    document, _ = served
    for path in ("/api/companies", "/api/changes", "/api/sync/log"):
        operation = document["paths"][path]["get"]
        assert set(operation["responses"]["200"]["content"]) == {
            "application/json",
            "text/csv",
            "application/x-ndjson",
        }, path
        (format_,) = [p for p in operation["parameters"] if p["name"] == "format"]
        assert format_["in"] == "query"
        assert not format_["required"]
    assert document["components"]["schemas"]["ExportFormat"]["enum"] == ["json", "csv", "jsonl"]
