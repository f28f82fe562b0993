"""The app factory: the only place where the packages are wired together."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rooms.database import Database
from web import health, pages
from web.keys import CLOCK, DATABASE, METRICS, VERSION
from yunhui.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _metrics_middleware(registry: CollectorRegistry) -> Middleware:
    requests = Counter(
        "yunhui_http_requests", "HTTP requests served", ["method", "status"], registry=registry
    )
    latency = Histogram("yunhui_http_request_seconds", "HTTP request latency", registry=registry)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            requests.labels(request.method, str(status)).inc()
            latency.observe(time.perf_counter() - started)

    return middleware


async def create_app(settings: Settings, *, secret_key: str, clock: Clock = utc_now) -> web.Application:
    """Build the whole application; live objects start and stop through ``cleanup_ctx``, in order."""
    registry = CollectorRegistry()
    Gauge("yunhui_info", "Yunhui build information", ["version"], registry=registry).labels(
        version("yunhui")
    ).set(1)
    app = web.Application(middlewares=[_metrics_middleware(registry)], client_max_size=8 * 1024 * 1024)
    app[CLOCK] = clock
    app[METRICS] = registry
    app[VERSION] = version("yunhui")

    # The engine is created now (no connection is made until first use) so that sub-applications can be
    # given the Database before the app freezes; it is closed last, by the first cleanup context.
    database = await Database.connect(settings.database_url)
    app[DATABASE] = database

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await database.close()

    app.cleanup_ctx.append(database_ctx)
    app.add_routes(health.routes)
    app.add_routes(pages.routes)
    return app
