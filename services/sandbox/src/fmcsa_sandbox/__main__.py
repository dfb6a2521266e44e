"""`python -m fmcsa_sandbox` (`fmcsa-sandbox`): serve the sandbox upstream until SIGTERM or SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import structlog

from fmcsa_runtime.cli import parse_command_line
from fmcsa_runtime.logging import configure_logging
from fmcsa_runtime.redaction import register_secret
from fmcsa_sandbox.settings import Settings

log = structlog.get_logger("fmcsa_sandbox")

GRACE_S = 1  # in-flight answers get this long at a stop; hung ones are cancelled after it


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so port 0 is resolved and the state file names the real URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP, and
    # with Nagle on every keep-alive answer waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _write_state(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    temporary.replace(path)  # readers never see half a file


def _remove_state(path: Path) -> None:
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass  # already gone or replaced by another sandbox: not ours to remove


def _stop(signum: int, frame: FrameType | None) -> None:
    # uvicorn re-raises the signal it caught once it has stopped; ending here makes that a clean exit 0
    raise SystemExit(0)


def main() -> None:
    parse_command_line(
        Settings,
        prog="fmcsa-sandbox",
        description="A local stand-in for the FMCSA upstreams and a webhook receiver, for tests and demos.",
    )
    # imported after the command line: `--help` answers without loading the app
    import uvicorn

    from fmcsa_sandbox.app import create_app

    settings = Settings()
    configure_logging(service="sandbox", level=settings.log_level, json=settings.log_json)
    for secret in (
        settings.qcmobile_web_key,
        settings.socrata_app_token,
        settings.saferweb_api_key,
        settings.webhook_secret,
    ):
        register_secret(secret.get_secret_value())
    for key in settings.lapsed_keys():
        register_secret(key)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sock = _listen(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if settings.state_file is not None:
        _write_state(settings.state_file, url)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            access_log=False,  # a line per request would cost more than the answer (and carry URLs)
            log_config=None,
            use_colors=False,
            timeout_graceful_shutdown=GRACE_S,
            lifespan="off",
        )
    )
    log.info("sandbox_started", url=url, data_version=settings.data_version, knobs=settings.runtime_knobs())
    try:
        server.run(sockets=[sock])
    finally:
        if settings.state_file is not None:
            _remove_state(settings.state_file)
        log.info("sandbox_stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
