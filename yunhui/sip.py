"""The SIP gateway in the app: credentials over rooms/, the calls layer, the SIP core, the REST status.

``install`` does nothing but register the REST routes' data source unless ``settings.sip.enabled``; when it
is, the cleanup context closes the call records a crashed run left open, makes the IVR's prompts and slate
(in a thread: PyAV and libx264), starts the listeners, and on shutdown ends every call before the SFU and
the database close.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web

from rooms.database import Database
from rooms.sip import calls as records
from rooms.sip.endpoints import endpoint_by_username
from sfu.sfu import Sfu
from signaling.clock import LoopScheduler, Scheduler
from signaling.server import MeetingServer
from signaling.sip.gateway import Gateway, LiveCall
from signaling.sip.ivr_media import PromptLibrary, make_slate
from signaling.sip.server import EndpointCredentials, Registration, SipServer
from signaling.sip.settings import SipSettings
from web import ui
from web.api.sip import SIP_STATUS
from web.api.sip_calls import SIP_DIALER
from yunhui.monitor_sip import gateway_listening

log = logging.getLogger(__name__)

SIP_SERVER = web.AppKey("sip_server", SipServer)
SIP_GATEWAY = web.AppKey("sip_gateway", Gateway)


class RoomsCredentials:
    """Implements signaling.sip.api.Credentials: Endpoint -> Site -> account, with the Site's standing now.

    HA1 is computed per lookup from the stored secret (rooms keeps the secret: the API shows it once), over
    the realm of the settings, so changing the realm needs no migration."""

    def __init__(self, db: Database, realm: str, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._realm = realm
        self._clock = clock

    async def lookup(self, username: str) -> EndpointCredentials | None:
        facts = await endpoint_by_username(self._db, username, now=self._clock())
        if facts is None:
            return None
        a1 = f"{facts.sip_username}:{self._realm}:{facts.sip_secret}".encode()
        return EndpointCredentials(
            endpoint_id=str(facts.endpoint_id),
            site_id=str(facts.site_id),
            account_id=str(facts.account_id),
            ha1_md5=hashlib.md5(a1, usedforsecurity=False).hexdigest(),
            ha1_sha256=hashlib.sha256(a1).hexdigest(),
            refusal=facts.refusal_text,
        )


class _Status:
    """The REST API's view (web.api.sip.SipStatus): the core's bindings and the gateway's calls."""

    def __init__(self, server: SipServer, gateway: Gateway) -> None:
        self._server = server
        self._gateway = gateway

    def registrations(self) -> list[Registration]:
        return self._server.registrations()

    def live_calls(self) -> list[LiveCall]:
        return self._gateway.live_calls()


def media_host(sip: SipSettings, announced: str | None) -> str:
    host = sip.calls.media_host or announced or sip.advertised_host or sip.host
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def install(
    app: web.Application,
    api: web.Application,
    sip: SipSettings,
    *,
    database: Database,
    sfu: Sfu,
    meetings: MeetingServer,
    clock: Callable[[], datetime],
    scheduler: Scheduler | None = None,
    state_dir: Path | None = None,
) -> Gateway | None:
    """Wire the gateway into ``app`` (and its status into ``api``); None when SIP is disabled."""
    if not sip.enabled:
        return None
    scheduler = scheduler or LoopScheduler(clock)
    calls = sip.calls
    # The prompts are decoded now (small files) and encoded per codec at start, in a thread.
    prompts = PromptLibrary(calls.ivr_languages)
    gateway = Gateway(
        meetings=meetings,
        sfu=sfu,
        db=database,
        scheduler=scheduler,
        prompts=prompts,
        slate=make_slate(),
        media_host=media_host(sip, sfu.settings.announced_address),
        sip_host=sip.advertised_host or sip.domain,
        srtp_policy=calls.srtp,
        silence_timeout=timedelta(seconds=calls.silence_timeout_seconds),
        ivr_rules={
            "digit_timeout": timedelta(seconds=calls.ivr_digit_timeout_seconds),
            "no_input_timeout": timedelta(seconds=calls.ivr_no_input_seconds),
            "attempts": calls.ivr_attempts,
        },
    )
    # state_dir keeps the self-signed TLS certificate (without sip.tls_cert) across restarts.
    server = SipServer(
        sip, scheduler, RoomsCredentials(database, sip.realm, clock), gateway, state_dir=state_dir
    )
    app[SIP_SERVER] = server
    gateway.dialler = server
    api[SIP_DIALER] = gateway
    meetings.sip_dialer = gateway
    app[ui.PREFER_H264] = sip.calls.browsers_publish_h264
    app[SIP_GATEWAY] = gateway
    api[SIP_STATUS] = _Status(server, gateway)

    async def sip_ctx(app: web.Application) -> AsyncIterator[None]:
        # The worker context ran first (yunhui/app.py): only this slot's earlier runs' records are closed.
        from yunhui.app import RECOVERY  # app imports this module

        recovery = app.get(RECOVERY)
        gateway.worker_id = None if recovery is None else recovery.worker_id
        closed = await records.close_unfinished(database, now=clock(), worker_id=gateway.worker_id)
        if closed:
            log.warning("closed %d SIP call record(s) a previous run left open", closed)
        await asyncio.to_thread(prompts.prepare)
        await server.start()
        log.info("SIP gateway listening: %s", server.ports)
        if server.ports.get("udp"):
            gateway_listening(app, sip.host, server.ports["udp"])  # the monitor's OPTIONS check
        yield
        await gateway.close()
        await server.close()

    app.cleanup_ctx.append(sip_ctx)
    return gateway
