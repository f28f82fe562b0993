"""Typed keys for what the composition root stores on the aiohttp application."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry

from rooms.database import Database

DATABASE = web.AppKey("database", Database)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
METRICS = web.AppKey("metrics", CollectorRegistry)
VERSION = web.AppKey("version", str)
# A readiness check beyond the database's (the cluster registry): None when ready, else the reason.
READINESS: web.AppKey[Callable[[], str | None]] = web.AppKey("readiness")
