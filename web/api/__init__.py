"""The REST API under /api/v1, with its OpenAPI document at /api/v1/openapi.json.

Route modules register in ROUTE_MODULES: each exposes `api: web.api.base.Api` (its RouteTableDef
`api.routes` plus the operations OpenAPI describes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

from aiohttp import web

from rooms.database import Database
from rooms.settings import RoomsSettings
from web.api import audit, auth, bookings, contracts, invoices, meetings, openapi, rooms, sites, webhooks
from web.api import availability as availability_api
from web.api import incidents as incidents_api
from web.api import live as live_api
from web.api import live_ingest as live_ingest_api
from web.api import live_meetings as live_meetings_api
from web.api import live_playlists as live_playlists_api
from web.api import live_videos as live_videos_api
from web.api import live_viewers as live_viewers_api
from web.api import locate as locate_api
from web.api import maintenance as maintenance_api
from web.api import notifications as notifications_api
from web.api import recording_watch as recording_watch_api
from web.api import recordings as recordings_api
from web.api import reports as reports_api
from web.api import sip as sip_api
from web.api import sip_calls as sip_calls_api
from web.api import sms as sms_api
from web.api import statements as statements_api
from web.api.base import CLOCK, DB, LIVE, SECRET_KEY, SETTINGS, THROTTLE, LiveMeetings, error_middleware
from web.api.recordings import RECORDINGS, RecordingService
from web.api.throttle import LoginThrottle

ROUTE_MODULES: list[ModuleType] = [auth, sites, rooms, bookings, meetings, contracts, invoices]
# Recordings (issue #17), and their watch page's link.
ROUTE_MODULES.extend([recordings_api, recording_watch_api])
ROUTE_MODULES.extend([maintenance_api, notifications_api])
# Pre-recorded videos and the playlists of live channels (issue #18).
ROUTE_MODULES.extend([live_videos_api, live_playlists_api])
# Live channels (issue #18): the console and statistics, and the viewers' sessions and HLS.
ROUTE_MODULES.extend([live_api, live_viewers_api])
ROUTE_MODULES.append(live_ingest_api)  # RTMP ingest: the URL and stream key
# SIP room terminals (issue #16): registrations, live calls and call records.
ROUTE_MODULES.append(sip_api)
ROUTE_MODULES.append(sip_calls_api)  # dial-out from a meeting
# The SMS platform (issue #19).
ROUTE_MODULES.append(sms_api)
# Billing documents (issue #23): statements of account, credit note PDFs.
ROUTE_MODULES.append(statements_api)
# Worker processes (issue #20): where a meeting lives; the live meetings of every worker.
ROUTE_MODULES.extend([locate_api, live_meetings_api])
# Operations (issue #21): measured availability and incidents.
ROUTE_MODULES.extend([availability_api, incidents_api])
# Operations (issue #21): webhooks, the audit log, usage charts.
ROUTE_MODULES.extend([webhooks, audit, reports_api])


def create_api(
    db: Database,
    *,
    secret_key: str,
    clock: Callable[[], datetime],
    settings: RoomsSettings | None = None,
    modules: list[ModuleType] | None = None,
    live: LiveMeetings | None = None,
    recordings: RecordingService | None = None,
) -> web.Application:
    """The API application; mount it with `app.add_subapp("/api/v1", api)`."""
    app = web.Application(middlewares=[error_middleware, audit.audit_middleware])
    app[DB] = db
    app[SECRET_KEY] = secret_key
    app[CLOCK] = clock
    app[SETTINGS] = settings or RoomsSettings()
    app[THROTTLE] = LoginThrottle()
    if live is not None:
        app[LIVE] = live
    if recordings is not None:
        app[RECORDINGS] = recordings
    operations = []
    for module in modules if modules is not None else ROUTE_MODULES:
        app.router.add_routes(module.api.routes)
        operations.extend(module.api.operations)
    document: dict[str, Any] = openapi.build(operations)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", openapi_json)
    return app


__all__ = ["ROUTE_MODULES", "create_api"]
