"""A17 dial-out: an admin calls a registered room system (Debian's baresip, answermode=auto) into a live
meeting over REST; it rings, joins as a SIP participant (Attendance kind sip), hangs up from each side, and
every refusal is a 4xx with a message. The whole app runs (SIP over UDP, the HTTP API, Socket.IO)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio
from aiohttp import web
from sqlalchemy import select, update

from rooms.database import Database
from rooms.models import Attendance, Endpoint, Site
from rooms.sip import calls as records
from rooms.tokens import mint_join_token
from rooms.users import create_user
from signaling.sip.gateway import Gateway
from signaling.sip.server import SipServer
from tests.conftest import SECRET_KEY
from tests.sip.baresip_support import Account, Baresip
from tests.sip.calls_support import until
from tests.sip.conftest import NOW, Seed, seed
from web.keys import DATABASE
from yunhui.app import create_app, utc_now
from yunhui.settings import load_settings
from yunhui.sip import SIP_GATEWAY, SIP_SERVER

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WAIT = 15.0


@dataclass
class App:
    app: web.Application
    url: str
    db: Database
    sip: SipServer
    gateway: Gateway
    seed: Seed


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sip_app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    """One app for the module (its start encodes the IVR prompts: seconds)."""
    tmp_path = tmp_path_factory.mktemp("dialout-app")
    settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "sfu": {"allow_loopback_candidates": True},
            "sip": {
                "enabled": True,
                "host": "127.0.0.1",
                "udp_port": 0,
                "tcp_port": None,
                "tls_port": None,
                "calls": {"ivr_languages": ["en"]},
            },
        }
    )
    app = await create_app(settings, secret_key=SECRET_KEY)
    db = app[DATABASE]
    await db.upgrade()
    s = await seed(db, passcode="4321")
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield App(app, f"http://127.0.0.1:{port}", db, app[SIP_SERVER], app[SIP_GATEWAY], s)
    finally:
        await runner.cleanup()


class Rest:
    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http, self.url, self.headers = http, url, {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.url}/api/v1{path}", json=body, headers=self.headers
        ) as response:
            text = await response.text()
            return response.status, (await response.json()) if text else None


async def _login(app: App, http: aiohttp.ClientSession, email: str, role: str, account_id: int) -> Rest:
    await create_user(app.db, email=email, password="pw-pw-pw-pw", role=role, account_id=account_id, now=NOW)
    async with http.post(
        f"{app.url}/api/v1/auth/login", json={"email": email, "password": "pw-pw-pw-pw"}
    ) as response:
        assert response.status == 200, await response.text()
        return Rest(http, app.url, (await response.json())["token"])


@contextlib.asynccontextmanager
async def participant(
    app: App, role: str = "participant"
) -> AsyncIterator[tuple[int, asyncio.Queue[tuple[str, Any]], socketio.AsyncClient]]:
    """A Socket.IO participant in the seeded room: the meeting is live while it is in (id, events, client)."""
    s = app.seed
    token, _ = mint_join_token(
        SECRET_KEY,
        room_id=s.room_id,
        meeting_number=s.meeting_number,
        account_id=s.account_id,
        role=role,
        display_name="Bo",
        now=utc_now(),
        ttl=dt.timedelta(minutes=5),
    )
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False)

    async def on_any(event: str, data: Any = None) -> None:
        events.put_nowait((event, data))

    client.on("*", on_any)
    await client.connect(app.url, auth={"token": token}, transports=["websocket"])
    try:
        _, joined = await next_event(events, "joined")
        yield joined["meeting"]["meeting_id"], events, client
    finally:
        await client.disconnect()


async def next_event(events: asyncio.Queue[tuple[str, Any]], name: str, **match: Any) -> tuple[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            event, data = await events.get()
            if event == name and all(data.get(k) == v for k, v in match.items()):
                return event, data


@contextlib.asynccontextmanager
async def terminal(app: App, tmp_path: Path, answermode: str = "auto") -> AsyncIterator[Baresip]:
    s, port = app.seed, app.sip.ports["udp"]
    account = Account(
        f"sip:{s.sip_username}@127.0.0.1:{port}",
        password=s.sip_secret,
        answermode=answermode,
        video_codecs="H264",
    )
    phone = await Baresip.start(tmp_path / "baresip", account)
    try:
        await phone.wait_registered()
        yield phone
    finally:
        await phone.close()


async def _record(db: Database) -> records.CallRecord:
    rows = await records.recent(db, account_id=None)
    return rows[0]


async def test_a17_dial_out_to_a_registered_baresip(sip_app: App, tmp_path: Path) -> None:
    s = sip_app.seed
    async with aiohttp.ClientSession() as http:
        admin = await _login(sip_app, http, "admin@acme.example", "admin", s.account_id)
        async with participant(sip_app) as (meeting_id, events, _), terminal(sip_app, tmp_path) as phone:
            path = f"/meetings/{int(meeting_id)}/sip/calls"
            status, call = await admin.call("POST", path, {"endpoint_id": s.endpoint_id})
            assert status == 202, call
            assert (call["state"], call["direction"], call["endpoint_id"]) == (
                "ringing",
                "outbound",
                s.endpoint_id,
            )
            await phone.wait_type("CALL_ESTABLISHED")
            _, joined = await next_event(events, "participant_joined")
            assert joined["participant"]["display_name"] == "Boardroom X30"
            await until(lambda: [c.state for c in sip_app.gateway.live_calls()] == ["joined"], "joined", WAIT)
            status, listed = await admin.call("GET", path)
            assert status == 200 and [(c["call_id"], c["state"]) for c in listed] == [
                (call["call_id"], "joined")
            ]
            async with sip_app.db.session() as session:
                (row,) = (await session.scalars(select(Attendance).where(Attendance.kind == "sip"))).all()
            assert (row.endpoint_id, row.site_id) == (s.endpoint_id, s.site_id)
            # Hang up from the meeting: BYE reaches baresip; the record says so.
            assert (await admin.call("DELETE", f"{path}/{call['call_id']}"))[0] == 204
            await phone.wait_type("CALL_CLOSED")
            await until(lambda: not sip_app.gateway.live_calls(), "the call is over", WAIT)
            record = await _record(sip_app.db)
            assert (record.direction, record.end_reason, record.meeting_id) == (
                "outbound",
                "hangup",
                int(meeting_id),
            )
            assert record.joined_at is not None and record.participant_id == row.participant_id
            assert (await admin.call("DELETE", f"{path}/{call['call_id']}"))[0] == 404
            # Again, and the terminal hangs up this time.
            phone.events.clear()
            status, call = await admin.call("POST", path, {"endpoint_id": s.endpoint_id})
            assert status == 202, call
            await phone.wait_type("CALL_ESTABLISHED")
            await until(lambda: [c.state for c in sip_app.gateway.live_calls()] == ["joined"], "joined", WAIT)
            status, busy = await admin.call("POST", path, {"endpoint_id": s.endpoint_id})
            assert (status, busy["error"]["code"]) == (409, "busy"), busy
            await phone.hangup()
            await until(lambda: not sip_app.gateway.live_calls(), "the terminal hung up", WAIT)
            await until(lambda: sip_app.sip.calls() == [], "no SIP dialog left", WAIT)
        record = await _record(sip_app.db)
        assert (record.sip_call_id, record.end_reason) == (call["call_id"], "bye")


async def test_dial_out_refusals_are_4xx_with_messages(sip_app: App) -> None:
    s = sip_app.seed
    async with aiohttp.ClientSession() as http:
        admin = await _login(sip_app, http, "admin2@acme.example", "admin", s.account_id)
        organizer = await _login(sip_app, http, "org@acme.example", "organizer", s.account_id)
        async with participant(sip_app) as (meeting_id, _, _):
            path = f"/meetings/{int(meeting_id)}/sip/calls"

            async def refused(who: Rest, body: Any) -> tuple[int, str, str]:
                status, error = await who.call("POST", path, body)
                return status, error["error"]["code"], error["error"]["message"]

            # Not registered (no baresip here), unknown, malformed, not the organizer.
            status, code, message = await refused(admin, {"endpoint_id": s.endpoint_id})
            assert (status, code) == (409, "not_registered") and "registered" in message
            assert (await refused(admin, {"endpoint_id": 999}))[:2] == (404, "no_such_endpoint")
            assert (await refused(admin, {"endpoint_id": "x"}))[0] == 422
            assert (await refused(admin, {}))[0] == 422
            assert (await refused(organizer, {"endpoint_id": s.endpoint_id}))[:2] == (403, "forbidden")
            # A suspended site's endpoint is refused with the words a terminal would get.
            async with sip_app.db.writer() as session:
                await session.execute(update(Site).where(Site.id == s.site_id).values(suspended_at=NOW))
                await session.commit()
            status, code, message = await refused(admin, {"endpoint_id": s.endpoint_id})
            assert (status, code) == (403, "site_suspended") and "suspended" in message.lower()
            async with sip_app.db.writer() as session:
                await session.execute(update(Site).where(Site.id == s.site_id).values(suspended_at=None))
                await session.execute(
                    update(Endpoint).where(Endpoint.id == s.endpoint_id).values(enabled=False)
                )
                await session.commit()
            assert (await refused(admin, {"endpoint_id": s.endpoint_id}))[:2] == (403, "endpoint_disabled")
            async with sip_app.db.writer() as session:
                await session.execute(
                    update(Endpoint).where(Endpoint.id == s.endpoint_id).values(enabled=True)
                )
                await session.commit()
            assert (await admin.call("DELETE", f"{path}/nosuchcall"))[0] == 404
            assert (await admin.call("POST", f"/meetings/{int(meeting_id)}/end"))[0] == 200
        status, error = await admin.call("POST", path, {"endpoint_id": s.endpoint_id})
        assert status == 409 and error["error"]["code"] == "not_live", error


async def test_a17_dial_out_over_socketio(sip_app: App, tmp_path: Path) -> None:
    """The host's sip_dial: every moderator sees sip_call ringing, joined, ended; others are refused."""
    s = sip_app.seed
    async with (
        participant(sip_app, "host") as (_, events, host),
        participant(sip_app) as (_, others, guest),
        terminal(sip_app, tmp_path) as phone,
    ):
        await guest.emit("sip_dial", {"endpoint_id": s.endpoint_id})
        _, error = await next_event(others, "error")
        assert error["code"] == "not_allowed", error
        await host.emit("sip_dial", {"endpoint_id": "seven"})
        _, error = await next_event(events, "error")
        assert error["code"] == "bad_payload", error
        await host.emit("sip_dial", {"endpoint_id": 999})
        _, error = await next_event(events, "error")
        assert (error["code"], error["message"]) == (
            "sip_dial_failed",
            "no such endpoint in this meeting's account",
        )
        await host.emit("sip_dial", {"endpoint_id": s.endpoint_id})
        _, ringing = await next_event(events, "sip_call", state="ringing")
        assert (ringing["endpoint_id"], ringing["display_name"]) == (s.endpoint_id, "Boardroom X30")
        await phone.wait_type("CALL_ESTABLISHED")
        await next_event(events, "sip_call", state="joined", call_id=ringing["call_id"])
        await host.emit("sip_hangup", {"call_id": ringing["call_id"]})
        _, ended = await next_event(events, "sip_call", state="ended")
        assert (ended["call_id"], ended["reason"]) == (ringing["call_id"], "hangup")
        await phone.wait_type("CALL_CLOSED")
        await host.emit("sip_hangup", {"call_id": ringing["call_id"]})
        _, error = await next_event(events, "error")
        assert error["code"] == "not_found", error


async def test_a_dial_out_nobody_answers_is_cancelled(sip_app: App, tmp_path: Path) -> None:
    s = sip_app.seed
    sip_app.gateway.ring_timeout = dt.timedelta(seconds=1)
    try:
        async with aiohttp.ClientSession() as http:
            admin = await _login(sip_app, http, "admin3@acme.example", "admin", s.account_id)
            async with (
                participant(sip_app) as (meeting_id, _, _),
                terminal(sip_app, tmp_path, "manual") as phone,
            ):
                status, call = await admin.call(
                    "POST", f"/meetings/{int(meeting_id)}/sip/calls", {"endpoint_id": s.endpoint_id}
                )
                assert status == 202, call
                await phone.wait_type("CALL_INCOMING")
                await phone.wait_type("CALL_CLOSED")  # our CANCEL
                await until(lambda: not sip_app.gateway.live_calls(), "the call is over", WAIT)
        record = await _record(sip_app.db)
        assert (record.sip_call_id, record.end_reason, record.joined_at) == (
            call["call_id"],
            "no_answer",
            None,
        )
    finally:
        sip_app.gateway.ring_timeout = dt.timedelta(seconds=60)
