"""Every error the gateway answers is an RFC 9457 problem (`application/problem+json`) with a reason.

Litestar answers a bad parameter or body with 400; here it is 422 (the request was understood but its
content is refused), with `errors: [{field, reason}]`. An exception nobody expected is a 500 problem
that names no internals; it is logged with its traceback and counted, never passed to the client.
"""

from __future__ import annotations

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
            source = getattr(item.get("source"), "value", item.get("source"))
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


def on_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    UNEXPECTED.inc()
    log.error("gateway_unexpected_error", path=request.url.path, method=request.method, exc_info=error)
    return problem_response(request, 500, "the gateway met an unexpected error; it is logged")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    HTTPException: on_http_exception,
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
