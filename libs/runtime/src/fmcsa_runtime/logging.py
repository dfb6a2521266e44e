"""One structlog setup for every process: JSON lines off a terminal, bound context, no secrets.

Standard-library loggers (uvicorn, FastStream, nats) are routed through the same processors, and
every rendered line passes through `redact`. httpx and httpcore are raised to WARNING because their
INFO line prints whole URLs, query strings included.

No line carries terminal colour codes: uvicorn's `color_message` copy of a message is dropped, any ANSI
escape sequence left in a value is removed, and FastStream's own stderr handler (colourised, not JSON)
is taken off its `faststream` logger, whose records go to the root handler like every other library's.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from fmcsa_runtime.redaction import redact

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b")


def _no_colour(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event.pop("color_message", None)  # uvicorn's coloured twin of the message
    for key, value in event.items():
        if isinstance(value, str) and "\x1b" in value:
            event[key] = _ANSI.sub("", value)
    return event


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
        _no_colour,
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
    import faststream  # noqa: F401  # creates its `faststream` logger and colour handler at import

    faststream_logger = logging.getLogger("faststream")
    faststream_logger.handlers[:] = []
    faststream_logger.propagate = True
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
