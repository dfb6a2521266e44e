"""Every error the gateway answers is an RFC 9457 problem (`application/problem+json`) with a reason.

Litestar answers a bad parameter or body with 400; here it is 422 (the request was understood but its
content is refused), with `errors: [{field, reason}]`. A body nested too deeply for the decoder
(`RecursionError`, e.g. 100,000 nested arrays) is a 400. An exception nobody expected is a 500 problem
that names no internals; it is counted (`fmcsa_gateway_unexpected_errors_total`), never passed to the
client, and logged at most `TRACEBACKS_PER_MINUTE` times a minute (the next line says how many were
not): with its traceback for an authenticated caller, as one short line for an anonymous request, so
nobody can fill the log, and nobody without a token can write a traceback to it.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import Counter
from pydantic import BaseModel, Field

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
UNEXPECTED = Counter("fmcsa_gateway_unexpected_errors_total", "Requests that ended in an unexpected error")


class FieldError(BaseModel):
    field: str = Field(description="Where the refused value is: a body field, a query or path parameter.")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(None, description="Each refused value with its reason (422).")


class ProblemError(HTTPException):
    """Raise to answer with a problem of a given status, detail and optional field errors."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.errors = errors


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    detail: str | None,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": phrase, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(extra: Any) -> list[FieldError]:
    found: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key") or ""
            # Litestar names the source of a path, query or header error; a body field's error has none
            source = getattr(item.get("source"), "value", item.get("source")) or ("body" if key else None)
            where = f"{source}.{key}" if source and key else str(key or source or "request")
            found.append(FieldError(field=where[:200], reason=str(item.get("message", "invalid"))[:500]))
    return found


def on_http_exception(request: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(error, ProblemError):
        return problem_response(
            request, error.status_code, error.detail, errors=error.errors, headers=error.headers
        )
    if isinstance(error, ValidationException):
        errors = _validation_errors(error.extra)
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors) or error.detail
        return problem_response(request, 422, detail[:1000], errors=errors or None, headers=error.headers)
    status = error.status_code
    return problem_response(request, status, error.detail, headers=error.headers)


TRACEBACKS_PER_MINUTE = 10


class LogBudget:
    """At most `per_minute` grants in any minute (a fixed window on the monotonic clock); counts the
    refusals so the next grant can say how many were shortened.
    """

    def __init__(self, per_minute: int, *, monotonic: Any = time.monotonic) -> None:
        self._per_minute = per_minute
        self._monotonic = monotonic
        self._window = -1
        self._used = 0
        self.suppressed = 0

    def take(self) -> bool:
        window = int(self._monotonic() // 60)
        if window != self._window:
            self._window, self._used = window, 0
        if self._used < self._per_minute:
            self._used += 1
            return True
        self.suppressed += 1
        return False


ERROR_LOGS = LogBudget(TRACEBACKS_PER_MINUTE)


def on_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    UNEXPECTED.inc()  # every one is counted; at most TRACEBACKS_PER_MINUTE a minute are logged
    if ERROR_LOGS.take():
        where = {"path": request.scope.get("path", "")[:200], "method": request.scope.get("method")}
        skipped, ERROR_LOGS.suppressed = ERROR_LOGS.suppressed, 0
        if request.scope.get("user") is None:  # anonymous: one short line, never a traceback
            kind = type(error).__name__
            log.warning("gateway_unexpected_error", error_type=kind, not_logged_before=skipped, **where)
        else:
            log.error("gateway_unexpected_error", not_logged_before=skipped, exc_info=error, **where)
    return problem_response(request, 500, "the gateway met an unexpected error; it is logged")


def on_too_deep(request: Request[Any, Any, Any], error: RecursionError) -> Response[dict[str, Any]]:
    return problem_response(request, 400, "the request body is nested too deeply")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    HTTPException: on_http_exception,
    RecursionError: on_too_deep,
    Exception: on_unexpected,
}


def problem_specs(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem answers a route may give."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=HTTPStatus(status).phrase,
            media_type=PROBLEM_JSON,
        )
        for status in statuses
    }
