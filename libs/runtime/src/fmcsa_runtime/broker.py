"""FastStream's NATS broker on the process's one connection, for the consumers FastStream carries
(ARCHITECTURE.md, "Where FastStream carries traffic, and where it cannot").

`SharedConnectionBroker` neither opens nor drains a connection: it rides on the one `connect_nats` made,
so the server sees one connection per process, and the reconnect back-off and logging of
`fmcsa_runtime.service` hold for its subscribers too. Its owner starts it once the connection is up and
stops it before draining the connection.
"""

from __future__ import annotations

import logging
from types import TracebackType

from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient


class SharedConnectionBroker(NatsBroker):
    """A FastStream `NatsBroker` on a connection made and drained by its owner.

    Each message it handles is logged at DEBUG (FastStream's default is two INFO lines per message),
    through a stdlib logger under `faststream.`, which `configure_logging` routes like every other.
    """

    def __init__(self, nc: NatsClient, *, name: str, grace_s: float) -> None:
        super().__init__(
            name=name,
            graceful_timeout=grace_s,
            logger=logging.getLogger(f"faststream.{name}"),
            log_level=logging.DEBUG,
        )
        self._shared = nc

    async def _connect(self) -> NatsClient:
        self.config.connect(self._shared)
        return self._shared

    async def stop(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        """Stop the subscribers; the connection is left to its owner (NatsBroker.stop would drain it)."""
        self._connection = None
        await super().stop(exc_type, exc_val, exc_tb)
