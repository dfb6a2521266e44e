"""One structlog setup for every process: JSON lines off a terminal, bound context, no secrets.

Standard-library loggers (uvicorn, FastStream, nats) are routed through the same processors, and
every rendered line passes through `redact`. httpx and httpcore are raised to WARNING because their
INFO line prints whole URLs, query strings included.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from fmcsa_runtime.redaction import redact


def _redact_event(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact(value)
        elif value is not None and not isinstance(value, int | float | bool):
            event[key] = redact(str(value))
    return event


def configure_logging(*, service: str, level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog and the standard library once per process; binds `service`."""
    as_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_event,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
