"""Webhooks against a real receiver on 127.0.0.1: signed events in order, a 500 retried with back-off, a bad
signature caught by the documented check, and the URLs that are refused (SSRF)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import get_args

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rooms import meetings
from rooms.database import Database
from rooms.errors import InvalidInput
from rooms.models import Room
from rooms.webhooks.policy import EVENTS, UrlPolicy, check_url, next_attempt
from rooms.webhooks.signing import BadSignature, sign, verify
from tests.api.conftest import START, Client, Clock, template_db
from web.api import create_api
from web.api.webhooks import URL_POLICY, EventName
from yunhui.settings import WebhookSettings
from yunhui.webhooks import WebhookDispatcher

__all__ = ["template_db"]

SECRET = "api-test-secret-key-0123456789abcdefghijklmnop"


def documented_check(secret: str, header: str, body: bytes, now: float, tolerance: int = 300) -> bool:
    """The receiver's check exactly as docs/api.md prints it (standard library only)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    """An aiohttp app that records each request and answers with the next queued status (then 200)."""

    url: str = ""
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    state.url = str(server.make_url("/hook"))
    try:
        yield state
    finally:
        await server.close()


@dataclass
class Scene:
    db: Database
    clock: Clock
    admin: Client
    other: Client
    account_id: int
    room_id: int


@pytest.fixture
async def scene(tmp_path: Path, template_db: tuple[Path, dict[str, int]]) -> AsyncIterator[Scene]:
    template, accounts = template_db
    shutil.copyfile(template, tmp_path / "api.db")
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    async with db.session() as session:
        room = Room(account_id=accounts["a"], name="R", meeting_number="555000111", passcode=None,
                    capacity=5, max_session_minutes=None, created_at=START)  # fmt: skip
        session.add(room)
        await session.commit()
    clock = Clock()
    api = create_api(db, secret_key=SECRET, clock=clock)
    api[URL_POLICY] = UrlPolicy(allow_private=True)  # the receiver is on loopback
    root = web.Application()
    root.add_subapp("/api/v1", api)
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    base = str(server.make_url("/api/v1"))
    try:
        async with aiohttp.ClientSession() as http:
            clients = []
            for email in ("admin@a.example", "admin@b.example"):
                client = Client(http, base)
                status, body = await client.call(
                    "POST", "/auth/login", {"email": email, "password": "password-123"}
                )
                assert status == 200, body
                client.token = body["token"]
                clients.append(client)
            yield Scene(db, clock, clients[0], clients[1], accounts["a"], room.id)
    finally:
        await server.close()
        await db.close()


async def test_signed_events_arrive_in_order_and_a_500_is_retried(scene: Scene, receiver: Receiver) -> None:
    events = ["meeting.started", "participant.joined", "participant.left", "meeting.ended"]
    status, hook = await scene.admin.call("POST", "/webhooks", {"url": receiver.url, "events": events})
    assert status == 201, hook
    assert hook["secret"].startswith("whsec_")
    settings = WebhookSettings(allow_private_addresses=True, retry_after_seconds=(5, 60))
    dispatcher = WebhookDispatcher(scene.db, settings, scene.clock)
    try:
        now = START
        meeting = await meetings.start_meeting(scene.db, room_id=scene.room_id, now=now)
        await meetings.record_join(scene.db, meeting_id=meeting.id, participant_id="p1", display_name="Ann",
                                   kind="browser", now=now, user_agent="Mozilla/5.0 (X11)")  # fmt: skip
        await meetings.record_leave(
            scene.db, meeting_id=meeting.id, participant_id="p1", reason="left", now=now
        )
        await meetings.end_meeting(scene.db, meeting.id, reason="host_ended", now=now)

        receiver.statuses = [500]
        assert await dispatcher.run_once() == 1
        status, log = await scene.admin.call("GET", f"/webhooks/{hook['id']}/deliveries")
        assert [(d["event"], d["status"], d["attempts"]) for d in log] == [
            ("meeting.ended", "pending", 0),
            ("participant.left", "pending", 0),
            ("participant.joined", "pending", 0),
            ("meeting.started", "pending", 1),
        ]
        assert log[-1]["response_code"] == 500 and log[-1]["last_error"].startswith("HTTP 500")
        # Nothing overtakes the failed event: the webhook waits for its retry, 5 s later.
        assert await dispatcher.run_once() == 0
        scene.clock.now = START + timedelta(seconds=4)
        assert await dispatcher.run_once() == 0
        scene.clock.now = START + timedelta(seconds=5)
        while await dispatcher.run_once():
            pass

        bodies = [json.loads(body) for _, body in receiver.got]
        assert [b["type"] for b in bodies] == ["meeting.started", *events]
        assert bodies[0]["id"] == bodies[1]["id"]  # the retry is the same event
        assert bodies[2]["data"]["display_name"] == "Ann" and bodies[2]["data"]["device_class"] == "desktop"
        assert bodies[4]["data"]["end_reason"] == "host_ended"
        for headers, body in receiver.got:
            header = headers["Yunhui-Signature"]
            assert documented_check(hook["secret"], header, body, now=scene.clock.now.timestamp())
            verify(hook["secret"], header, body, now=scene.clock.now)
            assert headers["Content-Type"] == "application/json"
        status, log = await scene.admin.call("GET", f"/webhooks/{hook['id']}/deliveries?status=delivered")
        assert len(log) == 4 and log[-1]["attempts"] == 2

        # A forged or altered request fails the documented check.
        headers, body = receiver.got[-1]
        header = headers["Yunhui-Signature"]
        assert not documented_check("whsec_wrong", header, body, now=scene.clock.now.timestamp())
        assert not documented_check(hook["secret"], header, body.replace(b"host_ended", b"timeout"),
                                    now=scene.clock.now.timestamp())  # fmt: skip
        assert not documented_check(hook["secret"], header, body, now=scene.clock.now.timestamp() + 301)
    finally:
        await dispatcher.close()


async def test_a_delivery_that_keeps_failing_gives_up_and_can_be_redelivered(
    scene: Scene, receiver: Receiver
) -> None:
    status, hook = await scene.admin.call(
        "POST", "/webhooks", {"url": receiver.url, "events": ["meeting.started"]}
    )
    assert status == 201
    dispatcher = WebhookDispatcher(
        scene.db, WebhookSettings(allow_private_addresses=True, retry_after_seconds=(5,)), scene.clock
    )
    try:
        status, queued = await scene.admin.call("POST", f"/webhooks/{hook['id']}/ping")
        assert (status, queued["event"], queued["status"]) == (202, "ping", "pending")
        receiver.statuses = [503, 503]
        assert await dispatcher.run_once() == 1
        scene.clock.now = START + timedelta(seconds=5)
        assert await dispatcher.run_once() == 1
        status, log = await scene.admin.call("GET", f"/webhooks/{hook['id']}/deliveries")
        assert (log[0]["status"], log[0]["attempts"], log[0]["response_code"]) == ("failed", 2, 503)
        # Given up, it no longer holds up the queue; a redelivery sends the same body again.
        status, again = await scene.admin.call("POST", f"/webhook-deliveries/{log[0]['id']}/redeliver")
        assert status == 202 and again["body"] == log[0]["body"]
        assert await dispatcher.run_once() == 1
        assert len(receiver.got) == 3 and receiver.got[-1][1] == receiver.got[0][1]
        # Another account sees none of it.
        assert (await scene.other.call("GET", f"/webhooks/{hook['id']}/deliveries"))[0] == 404
        assert (await scene.other.call("POST", f"/webhook-deliveries/{log[0]['id']}/redeliver"))[0] == 404
        assert (await scene.other.call("GET", "/webhooks"))[1] == []
    finally:
        await dispatcher.close()


async def test_the_api_refuses_urls_outside_http_and_into_private_networks(scene: Scene) -> None:
    strict = UrlPolicy()
    for url in (
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://example.com",
        "http://",
        "http://u:p@example.com/",
    ):
        with pytest.raises(InvalidInput) as refused:
            check_url(url, UrlPolicy(allow_private=True))
        assert refused.value.field == "url"
    for url in ("http://127.0.0.1:8080/", "http://10.1.2.3/", "http://[::1]/", "http://169.254.169.254/latest",
                "http://localhost/", "http://[::ffff:192.168.0.1]/", "http://0.0.0.0/"):  # fmt: skip
        with pytest.raises(InvalidInput, match="private, loopback or reserved"):
            check_url(url, strict)
    assert check_url("https://hooks.example.com/yunhui", strict) == "https://hooks.example.com/yunhui"
    status, body = await scene.admin.call(
        "POST", "/webhooks", {"url": "ftp://example.com/", "events": ["ping"]}
    )
    assert status == 422 and body["error"]["field"].startswith("events")
    status, body = await scene.admin.call(
        "POST", "/webhooks", {"url": "ftp://x.example/", "events": ["meeting.ended"]}
    )
    assert (status, body["error"]["field"]) == (422, "url")
    assert body["error"]["message"] == "url: only http:// and https:// URLs can receive webhooks"


async def test_the_dispatcher_refuses_a_name_that_resolves_to_loopback(scene: Scene) -> None:
    # Created while private targets were allowed, sent by a strict dispatcher: refused at connect time.
    status, hook = await scene.admin.call(
        "POST", "/webhooks", {"url": "http://localhost:9/hook", "events": ["meeting.started"]}
    )
    assert status == 201
    dispatcher = WebhookDispatcher(scene.db, WebhookSettings(retry_after_seconds=(5,)), scene.clock)
    try:
        await scene.admin.call("POST", f"/webhooks/{hook['id']}/ping")
        assert await dispatcher.run_once() == 1
        status, log = await scene.admin.call("GET", f"/webhooks/{hook['id']}/deliveries")
        assert log[0]["response_code"] is None
        assert "private, loopback or reserved" in log[0]["last_error"]
    finally:
        await dispatcher.close()


def test_signatures_and_the_retry_schedule() -> None:
    body = b'{"type":"ping"}'
    header = sign("s", body, now=START)
    assert (
        header
        == f"t={int(START.timestamp())},v1="
        + hmac.new(b"s", f"{int(START.timestamp())}.".encode() + body, hashlib.sha256).hexdigest()
    )
    assert verify("s", header, body, now=START + timedelta(seconds=300)) == int(START.timestamp())
    for secret, data, at in (
        ("t", body, START),
        ("s", body + b" ", START),
        ("s", body, START + timedelta(seconds=301)),
    ):
        with pytest.raises(BadSignature):
            verify(secret, header, data, now=at)
    with pytest.raises(BadSignature):
        verify("s", "v1=abc", body, now=START)
    assert next_attempt(1, START, (5, 60)) == START + timedelta(seconds=5)
    assert next_attempt(2, START, (5, 60)) == START + timedelta(seconds=60)
    assert next_attempt(3, START, (5, 60)) is None
    assert set(get_args(EventName)) == set(EVENTS)


async def test_the_running_app_delivers_a_live_meetings_events(tmp_path: Path, receiver: Receiver) -> None:
    """The whole app: a join over Socket.IO reaches the receiver through the app's own dispatcher task."""
    from rooms.tokens import mint_join_token
    from tests.conftest import SECRET_KEY
    from tests.signaling.live_server import Client as SocketClient
    from web.keys import DATABASE
    from yunhui.app import create_app, utc_now
    from yunhui.settings import load_settings

    settings = load_settings(
        overrides={
            "paths": {"var_dir": str(tmp_path / "var")},
            "server": {"host": "127.0.0.1", "port": 0, "tls_port": None},
            "webhooks": {"allow_private_addresses": True, "poll_interval_seconds": 0.05},
        }
    )
    app = await create_app(settings, secret_key=SECRET_KEY)
    db = app[DATABASE]
    await db.upgrade()
    async with db.session() as session:
        from rooms.models import Account
        from rooms.webhooks.models import Webhook

        account = Account(name="Acme", created_at=START)
        session.add(account)
        await session.flush()
        room = Room(account_id=account.id, name="R", meeting_number="555000999", passcode=None, capacity=5,
                    max_session_minutes=None, created_at=START)  # fmt: skip
        session.add(room)
        events = ["participant.joined"]
        hook = Webhook(account_id=account.id, url=receiver.url, secret="whsec_live", events=events,
                       active=True, description="", created_at=START)  # fmt: skip
        session.add(hook)
        await session.commit()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    client = SocketClient()
    try:
        token, _ = mint_join_token(
            SECRET_KEY, room_id=room.id, meeting_number="555000999", account_id=account.id, role="host",
            display_name="Ann", now=utc_now(), ttl=timedelta(hours=1),
        )  # fmt: skip
        await client.connect(f"http://{host}:{port}", {"token": token})
        await client.expect("joined")
        async with asyncio.timeout(20):
            await receiver.arrived.wait()
        headers, body = receiver.got[0]
        assert json.loads(body)["data"]["display_name"] == "Ann"
        verify("whsec_live", headers["Yunhui-Signature"], body, now=utc_now())
    finally:
        await client.close()
        await runner.cleanup()


async def test_the_billing_run_queues_invoice_issued_in_its_transaction(
    scene: Scene, receiver: Receiver
) -> None:
    from sqlalchemy import select

    from rooms.billing.run import run_billing
    from rooms.billing.store import create_contract
    from rooms.models import Site
    from rooms.webhooks.models import WebhookDelivery

    status, hook = await scene.admin.call(
        "POST", "/webhooks", {"url": receiver.url, "events": ["invoice.issued"]}
    )
    assert status == 201
    async with scene.db.session() as session:
        site = Site(account_id=scene.account_id, name="S", created_at=START)
        session.add(site)
        await session.commit()
    terms = {"currency": "CNY", "fee_per_endpoint_year": "12850", "start": "2026-01-01", "trial_months": 0}
    await create_contract(scene.db, account_id=scene.account_id, terms=terms, sites=[{"site_id": site.id}],
                          now=START)  # fmt: skip
    report = await run_billing(scene.db, now=START)
    async with scene.db.session() as session:
        rows = (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
    numbers = [json.loads(r.body)["data"]["number"] for r in rows]
    assert report.issued and numbers == report.issued
    assert {r.event for r in rows} == {"invoice.issued"} and all(r.webhook_id == hook["id"] for r in rows)
    assert await run_billing(scene.db, now=START) is not None
    async with scene.db.session() as session:
        assert len((await session.scalars(select(WebhookDelivery))).all()) == len(
            rows
        )  # nothing issued twice


async def test_a_recording_turning_ready_queues_recording_ready(scene: Scene, receiver: Receiver) -> None:
    from sqlalchemy import select

    from rooms.recordings import store as recordings
    from rooms.webhooks.models import WebhookDelivery

    status, hook = await scene.admin.call(
        "POST", "/webhooks", {"url": receiver.url, "events": ["recording.ready"]}
    )
    assert status == 201
    meeting = await meetings.start_meeting(scene.db, room_id=scene.room_id, now=START)
    recording_id = await recordings.create(
        scene.db, account_id=scene.account_id, meeting_id=meeting.id, room_id=scene.room_id, directory="r1",
        started_by="host", now=START,
    )  # fmt: skip
    track = recordings.FileFact(kind="track", name="a.webm", size_bytes=10, participant="p1")
    await recordings.finalised(scene.db, recording_id, [track], duration_ms=60_000, ended_at=START,
                               retention_days=None, render=True, now=START)  # fmt: skip
    composite = recordings.FileFact(kind="composite", name="c.mp4", size_bytes=100, duration_ms=60_000)
    await recordings.rendered(scene.db, recording_id, composite, now=START)
    async with scene.db.session() as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
    assert [(r.event, r.webhook_id) for r in rows] == [("recording.ready", hook["id"])]
    assert json.loads(rows[0].body)["data"] == {
        "recording_id": recording_id, "meeting_id": meeting.id, "duration_ms": 60_000, "size_bytes": 110,
    }  # fmt: skip


async def test_two_dispatchers_never_send_the_same_attempt(scene: Scene, receiver: Receiver) -> None:
    # Two workers polling one outbox: the lease gives each delivery to one of them.
    status, hook = await scene.admin.call(
        "POST", "/webhooks", {"url": receiver.url, "events": ["meeting.started"]}
    )
    assert status == 201
    settings = WebhookSettings(allow_private_addresses=True)
    first, second = (WebhookDispatcher(scene.db, settings, scene.clock) for _ in range(2))
    try:
        for _ in range(3):
            await scene.admin.call("POST", f"/webhooks/{hook['id']}/ping")
        sent = 0
        for _ in range(3):
            sent += sum(await asyncio.gather(first.run_once(), second.run_once()))
        assert sent == 3 and len(receiver.got) == 3
        assert len({json.loads(body)["id"] for _, body in receiver.got}) == 3
    finally:
        await first.close()
        await second.close()


async def test_going_live_and_ending_queue_live_events_but_a_rehearsal_does_not(
    scene: Scene, receiver: Receiver
) -> None:
    from sqlalchemy import select

    from rooms.live import store as live
    from rooms.webhooks.models import WebhookDelivery

    status, hook = await scene.admin.call(
        "POST", "/webhooks", {"url": receiver.url, "events": ["live.started", "live.ended"]}
    )
    assert status == 201
    fields = live.ChannelFields(title="Launch", language="en", source_kind="playlist")
    channel = await live.create(scene.db, account_id=scene.account_id, fields=fields, now=START)
    await live.act(scene.db, channel.id, "rehearse", now=START)
    await live.act(scene.db, channel.id, "stop", now=START + timedelta(minutes=1))  # back to draft: nothing
    await live.act(scene.db, channel.id, "go_live", now=START + timedelta(minutes=2))
    await live.act(scene.db, channel.id, "stop", now=START + timedelta(minutes=62))
    async with scene.db.session() as session:
        rows = (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
    assert [(r.event, r.webhook_id) for r in rows] == [
        ("live.started", hook["id"]),
        ("live.ended", hook["id"]),
    ]
    ended = json.loads(rows[1].body)["data"]
    assert ended == {
        "channel_id": channel.id, "title": "Launch", "language": "en",
        "started_at": (START + timedelta(minutes=2)).isoformat(),
        "ended_at": (START + timedelta(minutes=62)).isoformat(),
    }  # fmt: skip
