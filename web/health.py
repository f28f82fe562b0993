"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.keys import DATABASE, METRICS, READINESS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    try:
        await database.ping()
        current = await database.is_current()
    except Exception as exc:  # any failure to reach the database means "not ready", never a 500
        log.warning("readiness check failed: %s", exc)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    if not current:
        return web.json_response({"status": "unavailable", "database": "migrations pending"}, status=503)
    readiness = request.app.get(READINESS)
    reason = readiness() if readiness is not None else None
    if reason is not None:
        return web.json_response({"status": "unavailable", "database": "ok", "cluster": reason}, status=503)
    return web.json_response({"status": "ready", "database": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
