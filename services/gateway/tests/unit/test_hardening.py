"""Pure parts of the gateway's hardening: the JWT secret's length, the page's markup under a script-src
'self' policy, malformed targets, the JSON import's expansion bound, and the error log's budget."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.connection import Request
from pydantic import ValidationError
from structlog.testing import capture_logs

from fmcsa_gateway import problems
from fmcsa_gateway.auth import Caller
from fmcsa_gateway.domain import ImportRefused, json_import_rows
from fmcsa_gateway.security import malformed_target
from fmcsa_gateway.settings import Settings
from fmcsa_runtime.tokens import Role

PACKAGE = Path(problems.__file__).parent
TEMPLATES = sorted((PACKAGE / "templates").rglob("*.html"))


def test_a_jwt_secret_shorter_than_32_characters_is_refused() -> None:
    short = "s3cret-but-only-31-characters!!"
    assert len(short) == 31
    with pytest.raises(ValidationError) as refused:
        Settings(jwt_secret=short)
    assert "at least 32 characters" in str(refused.value)
    assert Settings(jwt_secret=short + "x").jwt_secret is not None
    assert Settings(jwt_secret=None).jwt_secret is None  # unset: every protected route answers 401


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_the_templates_hold_no_inline_script_and_need_no_eval(template: Path) -> None:
    """What CSP `script-src 'self'` (no 'unsafe-inline', no 'unsafe-eval') would block."""
    text = template.read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) is None, "an inline <script>"
    assert re.search(r"\son[a-z]+\s*=", text) is None, "an inline event handler"
    assert "hx-on" not in text, "hx-on is evaluated as code"
    assert "javascript:" not in text
    assert "js:" not in text, "hx-vals js: is evaluated as code"
    for trigger in re.findall(r'hx-trigger="([^"]*)"', text):
        assert "[" not in trigger, f"a trigger filter is evaluated as code: {trigger}"


def test_the_page_turns_off_htmx_eval() -> None:
    index = (PACKAGE / "templates" / "index.html").read_text()
    assert '"allowEval": false' in index


@pytest.mark.parametrize(
    ("path", "status"),
    [(" /api/companies", 400), ("api", 400), ("", 400), ("/static/x\x00.png", 404), ("/static/\n", 404)],
)
def test_malformed_targets_are_refused(path: str, status: int) -> None:
    refused = malformed_target(path)
    assert refused is not None
    assert refused[0] == status


@pytest.mark.parametrize("path", ["/", "/api/companies", "/static/app.js", "/api/companies/1\x00"])
def test_other_targets_reach_the_routes(path: str) -> None:
    assert malformed_target(path) is None  # a route's parameter refuses a control character (422)


def test_a_json_import_is_bounded_by_its_separators_before_it_is_decoded() -> None:
    with pytest.raises(ImportRefused, match="values a row"):
        json_import_rows(b"[" + b"[]," * 80 + b"[]]", max_rows=10)
    with pytest.raises(ImportRefused, match="nested too deeply"):
        json_import_rows(b'[{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", max_rows=100_000)
    with pytest.raises(ImportRefused, match="got `array`"):  # an array item is refused, not built
        json_import_rows(b"[" * 100_000 + b"]" * 100_000, max_rows=100_000)
    with pytest.raises(ImportRefused, match="list of DOT numbers"):
        json_import_rows(b"[" + b"7" * 5_000 + b"]", max_rows=10)
    with pytest.raises(ImportRefused, match="at most 2 rows"):
        json_import_rows(b'["1", "2", "3"]', max_rows=2)
    rows = json_import_rows(
        b'[1, "2", {"dot_number": "3", "name": "C", "extra": [1]}, {"dot": 4}, true]', max_rows=9
    )
    assert rows == [(1, 1, None), (2, "2", None), (3, "3", "C"), (4, 4, None), (5, True, None)]


def _request(user: Caller | None) -> Request[Any, Any, Any]:
    scope: Any = {
        "type": "http",
        "method": "GET",
        "path": "/api/companies",
        "raw_path": b"/api/companies",
        "query_string": b"",
        "headers": [],
        "app": Litestar(),
        "litestar_app": None,
        "state": {},
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "root_path": "",
    }
    if user is not None:
        scope["user"] = user
    return Request(scope)


def test_unexpected_errors_log_tracebacks_for_callers_only_and_within_a_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr(problems, "ERROR_LOGS", problems.LogBudget(3, monotonic=lambda: clock[0]))
    caller = Caller(subject="ops", role=Role.VIEWER)
    error = RuntimeError("boom")
    with capture_logs() as logs:
        answer = problems.on_unexpected(_request(None), error)
        assert answer.status_code == 500
        problems.on_unexpected(_request(caller), error)
        for _ in range(5):  # over the budget of 3 a minute: counted, not logged
            problems.on_unexpected(_request(caller), error)
        clock[0] += 60  # the next minute
        problems.on_unexpected(_request(caller), error)
    assert len(logs) == 4
    anonymous, *known = logs
    assert "exc_info" not in anonymous
    assert anonymous["error_type"] == "RuntimeError"
    assert all(entry["exc_info"] is error for entry in known)
    assert known[-1]["not_logged_before"] == 4  # the 5 over the budget, less the one that used its place
