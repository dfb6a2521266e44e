"""The composition root of the gateway, in the same worker shell as every service; importing builds
nothing.

`create_app(settings)` is a `fmcsa_runtime.service.Shell`: the shell owns the process's one NATS
connection (topology declared), `/health`, `/ready` (the connection, and the status view answering) and
`/metrics` (the process's registry: the request counts per route and the gateway's own families), the
stop within the grace and the signals. Its worker (`GatewayWorker`) opens the status view read-only,
starts the live feed and builds what the routes talk to (`Ports`, `Alerts`) over the shell's connection;
every other request goes to the Litestar app behind the shell (`create_api`: routes, auth, problem
details, templates, static assets, request metrics and the API documents), which has no lifespan of its
own beyond Litestar's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Any

import structlog
from litestar import Litestar, Router
from litestar.connection import Request
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from nats.aio.client import Client as NatsClient

from fmcsa_events.bus import Bus, utc_now
from fmcsa_events.models import ScheduleChanged
from fmcsa_events.topology import INFLIGHT_BUCKET, STATE_BUCKET
from fmcsa_gateway.alerts import Alerts, open_alerts, provide_alerts
from fmcsa_gateway.asyncapi import asyncapi_document
from fmcsa_gateway.auth import Caller, build_auth
from fmcsa_gateway.bus_state import ScheduleCache, current_schedules
from fmcsa_gateway.commands import Commands
from fmcsa_gateway.live import Change, LiveFeed
from fmcsa_gateway.openapi import FinishedJsonRenderPlugin
from fmcsa_gateway.ports import Ports, provide_ports
from fmcsa_gateway.problems import EXCEPTION_HANDLERS
from fmcsa_gateway.routes.alert_pages import AlertPagesController
from fmcsa_gateway.routes.alerts import AlertRulesController, DeliveriesController
from fmcsa_gateway.routes.carriers import CarriersController
from fmcsa_gateway.routes.changes import ChangesController
from fmcsa_gateway.routes.companies import CompaniesController, ImportController
from fmcsa_gateway.routes.events import EventsController
from fmcsa_gateway.routes.pages import ImportPageController, PagesController
from fmcsa_gateway.routes.schedules import SchedulesController
from fmcsa_gateway.routes.seed import SeedController
from fmcsa_gateway.routes.sync import SyncController
from fmcsa_gateway.routes.system import asyncapi
from fmcsa_gateway.security import PROBE_HEADERS, RefuseMalformedTargets, security_headers
from fmcsa_gateway.settings import Settings
from fmcsa_gateway.status_path import StatusPath
from fmcsa_runtime.broker import SharedConnectionBroker
from fmcsa_runtime.service import Shell
from fmcsa_status_view.query import StatusView

log = structlog.get_logger(__name__)

PACKAGE = Path(__file__).parent
SWAGGER = "/static/swagger-ui-5.35.0"


def _version() -> str:
    try:
        return version("fmcsa-gateway")
    except Exception:  # run from a source tree without installed metadata
        return "0.0.0"


class TemplatePathMetrics(PrometheusMiddleware):
    """Litestar's Prometheus middleware with the same families, labels and values, at less cost per
    request: the path label is the route's template (`group_path`; Litestar parsed the URL only to drop
    it), and each label set's children are looked up once and kept (Litestar builds a `Request`, a label
    dict and a wrapped `send`, and looks each child up again, on every request). The label sets are
    bounded: routed methods x route templates x statuses.
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        if config.labels or config.exemplars or config.excluded_http_methods:
            raise ValueError("TemplatePathMetrics takes no extra labels, exemplars or excluded methods")
        self._in_progress: dict[tuple[str, str], Any] = {}
        self._outcomes: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _get_default_labels(self, request: Request[Any, Any, Any]) -> dict[str, str | int | float]:
        scope = request.scope
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        return self._labels(method, scope["path_template"], 200)

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        """`path` is the route's template (`scope["path_template"]`, set by Litestar as it routed)."""
        return {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}

    def in_progress(self, method: str, path: str) -> Any:
        """The in-progress gauge's child of a route (`path` is its template)."""
        in_progress = self._in_progress.get((method, path))
        if in_progress is None:
            labels = self._labels(method, path, 200)
            in_progress = self.requests_in_progress(labels).labels(*labels.values())
            self._in_progress[(method, path)] = in_progress
        return in_progress

    def outcome(self, method: str, path: str, status: int) -> tuple[Any, Any]:
        """The request counter's and the duration histogram's children of a route's answers of `status`."""
        outcome = self._outcomes.get((method, path, status))
        if outcome is None:
            labels = self._labels(method, path, status)
            outcome = (
                self.request_count(labels).labels(*labels.values()),
                self.request_time(labels).labels(*labels.values()),
            )
            self._outcomes[(method, path, status)] = outcome
        return outcome

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        path = scope["path_template"]
        in_progress = self.in_progress(method, path)
        started = time.perf_counter()
        status, duration = 200, 0.0

        async def timed_send(message: Message) -> None:
            nonlocal status, duration
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        in_progress.inc()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            in_progress.dec()
            outcome = self.outcome(method, path, status)
            if status >= HTTP_500_INTERNAL_SERVER_ERROR:
                labels = self._labels(method, path, status)
                self.requests_error_count(labels).labels(*labels.values()).inc()
            outcome[0].inc()
            outcome[1].observe(duration)


class SwaggerFromFile(SwaggerRenderPlugin):
    """Litestar's Swagger UI page, started by `static/swagger-init.js` instead of an inline script (the
    Content Security Policy allows scripts from files only); it loads the spec from /schema/openapi.json.
    """

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema["info"]["title"]).replace("<", "&lt;")
        return f"""<!DOCTYPE html><html><head><title>{title}</title>{self.favicon}
<meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1">
<link href="{self.css_url}" rel="stylesheet">
<script src="{self.js_url}"></script>
<script src="{self.standalone_preset_js_url}"></script>
<script src="/static/swagger-init.js"></script>
</head><body><div id="swagger-container"></div></body></html>""".encode()


class GatewayApp(Litestar):
    """Litestar with `RefuseMalformedTargets` around its ASGI handler: a path no route could hold is a
    400 before routing (inside the `before_send` hooks, so it carries the security headers too).
    """

    def _create_asgi_handler(self) -> ASGIApp:
        return RefuseMalformedTargets(super()._create_asgi_handler())

    @cached_property
    def methods_by_path(self) -> dict[str, frozenset[str]]:
        """Each route's path template (`/api/alert-rules/{name}`) and every method it answers."""
        return {r.path_format: frozenset(r.methods) for r in self.routes if isinstance(r, HTTPRoute)}


async def allow_every_method(message: Message, scope: Scope) -> None:
    """Litestar's default OPTIONS answer lists the methods of one handler of a path, not all of them
    (litestar#4169, fixed in Litestar 3): rewrite its `Allow` with every method the path answers.
    """
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    app = scope.get("litestar_app")
    headers = MutableScopeHeaders.from_message(message)
    if isinstance(app, GatewayApp) and "allow" in headers:
        methods = app.methods_by_path.get(str(scope.get("path_template", "")))
        if methods:
            headers["allow"] = ", ".join(sorted(methods))


def _trigger_subject(request: Request[Any, Any, Any]) -> str:
    user = request.scope.get("user")
    return f"subject:{user.subject}" if isinstance(user, Caller) else "anonymous"


async def _is_trigger(request: Request[Any, Any, Any]) -> bool:
    return bool(request.route_handler.opt.get("trigger"))


class GatewayWorker:
    """The gateway's part of one run (`fmcsa_runtime.service.Worker`), over the shell's connection: the
    status view (read-only), the live feed on FastStream, the commands' bus, and the alert rules; what
    the routes talk to goes into the Litestar app's `state` (`ports`, `alerts`).
    """

    def __init__(self, settings: Settings, state: State, *, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.state = state
        self.clock = clock
        self.broker: SharedConnectionBroker | None = None
        self.view: StatusView | None = None
        self.feed: LiveFeed | None = None
        self.alerts: Alerts | None = None

    async def start(self, nc: NatsClient) -> None:
        settings, clock = self.settings, self.clock
        js = nc.jetstream()
        self.broker = SharedConnectionBroker(nc, name="gateway", grace_s=settings.grace_s)
        await self.broker.start()
        self.view = view = StatusView(settings.resolved_status_database_url())
        schedules = ScheduleCache(lambda: current_schedules(js))

        def on_change(change: Change) -> None:
            if change.type == ScheduleChanged.TYPE:
                schedules.invalidate()

        self.feed = LiveFeed(
            self.broker,
            applied=view.applied_position,
            view_wait_s=settings.sse_view_wait_s,
            on_change=on_change,
        )
        await self.feed.start()
        commands = Commands(
            Bus(js, producer="gateway", clock=clock),
            await js.key_value(INFLIGHT_BUCKET),
            clock=clock,
            request_deadline=timedelta(seconds=settings.request_deadline_s),
            in_flight=settings.publish_in_flight,
        )
        ports = Ports(
            settings=settings,
            nc=nc,
            js=js,
            commands=commands,
            state_kv=await js.key_value(STATE_BUCKET),
            view=view,
            feed=self.feed,
            clock=clock,
            schedules=schedules,
        )
        self.alerts = open_alerts(
            ports,
            secret_key=settings.webhook_secret_key.get_secret_value()
            if settings.webhook_secret_key
            else None,
            allow_hosts=settings.webhook_allow_hosts,
            deliveries_url=settings.resolved_notifier_database_url(),
        )
        self.state.ports, self.state.alerts = ports, self.alerts
        log.info("gateway_started", host=settings.http_host, port=settings.http_port)

    async def stop(self, grace_s: float) -> None:
        if self.feed is not None:
            await self.feed.stop()
        if self.broker is not None:
            await self.broker.stop()
        if self.view is not None:
            await self.view.close()
        if self.alerts is not None:
            await self.alerts.close()

    async def ready(self) -> bool:
        """The status view answers (its applied position is read)."""
        if self.view is None:
            return False
        try:
            await self.view.applied_position()
        except Exception:  # any failure to read the store means: not ready
            return False
        return True


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Shell:
    """The gateway as it runs: the worker shell, with the Litestar app behind it (`shell.app`); tests
    pass the clock they must control. Connects nothing until it starts.
    """
    api = create_api(settings)
    worker = GatewayWorker(settings, api.state, clock=clock)
    return Shell(settings, name="gateway", worker=worker, app=api, check="status_view", headers=PROBE_HEADERS)


def create_api(settings: Settings) -> GatewayApp:
    """The routes, auth, problem details, templates, static assets, request metrics and the API
    documents; the routes find their ports in `state` once the worker has started.
    """
    auth = build_auth(settings)
    prometheus = PrometheusConfig(
        app_name="fmcsa_gateway",
        group_path=True,
        exclude=["^/static/"],
        middleware_class=TemplatePathMetrics,
    )
    openapi = OpenAPIConfig(
        title="fmcsa-sync gateway",
        version=_version(),
        description="Companies, sync status, the sync log, the change feed, manual triggers and schedules. "
        "Errors are RFC 9457 problem details. "
        "Authenticate with `Authorization: Bearer <token>` from `./fmcsa token`. "
        "The bus's AsyncAPI document is at /asyncapi.json.",
        path="/schema",
        render_plugins=[
            FinishedJsonRenderPlugin(trigger_max_dots=settings.trigger_max_dots),
            SwaggerFromFile(
                path="/",
                js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
                favicon="<link rel='icon' href='data:,'>",  # nothing fetched from elsewhere
            ),
        ],
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
    )
    # manual triggers (API and page, one budget): per token subject, checked before the handler runs
    trigger_rate = RateLimitConfig(
        rate_limit=("minute", settings.trigger_per_minute),
        identifier_for_request=_trigger_subject,
        check_throttle_handler=_is_trigger,
    )
    api = GatewayApp(
        route_handlers=[
            asyncapi,
            CompaniesController,
            # the imports (API, page) alone may send a large body; other routes: request_max_body_size below
            Router(
                path="/",
                route_handlers=[ImportController, ImportPageController],
                request_max_body_size=settings.import_max_bytes,
            ),
            ChangesController,
            CarriersController,
            SyncController,
            SeedController,
            SchedulesController,
            EventsController,
            PagesController,
            AlertRulesController,
            DeliveriesController,
            AlertPagesController,
            create_static_files_router(
                path="/static", directories=[PACKAGE / "static"], include_in_schema=False
            ),
        ],
        dependencies={
            "ports": Provide(provide_ports, sync_to_thread=False),
            "alerts": Provide(provide_alerts, sync_to_thread=False),
        },
        on_app_init=[auth.on_app_init],
        middleware=[prometheus.middleware, trigger_rate.middleware],
        before_send=[security_headers, allow_every_method],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]  # Litestar's handler map is invariant
        openapi_config=openapi,
        template_config=TemplateConfig(directory=PACKAGE / "templates", engine=JinjaTemplateEngine),
        state=State({"asyncapi": asyncapi_document(nats_url=settings.nats_url, version=_version())}),
        request_max_body_size=settings.request_max_bytes,
        logging_config=None,
    )
    # the status GET's direct path, inside Litestar's handler: its before_send hooks still apply
    metrics = TemplatePathMetrics(api.asgi_handler, prometheus)
    secret = auth.token_secret
    api.asgi_handler = StatusPath(api.asgi_handler, state=api.state, secret=secret, metrics=metrics)
    return api
