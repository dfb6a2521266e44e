"""What the routes talk to, built once per app by the gateway's worker (`fmcsa_gateway.app.GatewayWorker`,
when the shell starts it) and handed to routes as `ports`.

The routes never build a connection, engine or client themselves; tests reach the same objects
through `app.state.ports`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from fmcsa_gateway.bus_state import ScheduleCache
from fmcsa_gateway.commands import Commands
from fmcsa_gateway.live import LiveFeed
from fmcsa_gateway.settings import Settings
from fmcsa_status_view.query import StatusView


@dataclass
class Ports:
    settings: Settings
    nc: NatsClient
    js: JetStreamContext
    commands: Commands
    state_kv: KeyValue
    view: StatusView
    feed: LiveFeed
    clock: Callable[[], datetime]
    schedules: ScheduleCache


def provide_ports(state: State) -> Ports:
    ports: Any = getattr(state, "ports", None)
    if not isinstance(ports, Ports):
        raise RuntimeError("the gateway is not started: its worker has not run")
    return ports


PortsDep = NamedDependency[Ports]
"""How a route asks for the ports: `ports: PortsDep`."""
