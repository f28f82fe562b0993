"""The recordings REST API on the whole app (real server on 127.0.0.1, injected clock): listing, isolation,
signed links (expired, tampered, another account's, paths), bad input, delete, retention purge, retry, and
start/stop over REST with a real meeting (a Socket.IO host) and the real recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Account, Attendance, Meeting, Room, User
from rooms.recordings import store
from rooms.recordings.models import Recording
from rooms.recordings.store import FileFact
from rooms.tokens import mint_access_token, mint_join_token
from tests.conftest import SECRET_KEY
from tests.signaling.live_server import Client as SocketClient
from web.keys import DATABASE
from yunhui.app import create_app
from yunhui.recordings import RECORDINGS, Recordings
from yunhui.settings import Settings

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
COMPOSITE = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # served as bytes; never decoded here


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    url: str
    app: web.Application
    db: Database
    clock: Clock
    http: aiohttp.ClientSession
    root: Path
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def recordings(self) -> Recordings:
        return self.app[RECORDINGS]

    async def call(
        self, method: str, path: str, who: str | None = "admin_a", **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        headers.update(kwargs.pop("headers", {}))
        async with self.http.request(method, f"{self.url}/api/v1{path}", headers=headers, **kwargs) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.read()


async def _seed_recording(env: Env, key: str, *, ready: bool = True) -> int:
    account_id, room_id = env.ids[f"account_{key}"], env.ids[f"room_{key}"]
    async with env.db.session() as session:
        meeting = Meeting(
            account_id=account_id, room_id=room_id, started_at=env.clock.now, ended_at=env.clock.now
        )
        session.add(meeting)
        await session.commit()
    directory = f"{meeting.id}-seeded-{key}"
    recording_id = await store.create(
        env.db, account_id=account_id, meeting_id=meeting.id, room_id=room_id, directory=directory,
        started_by="Ann", now=env.clock.now,
    )  # fmt: skip
    folder = env.root / directory
    folder.mkdir(parents=True)
    (folder / "1-camera.mkv").write_bytes(b"mkv" * 100)
    (folder / "timeline.jsonl").write_text('{"t": 0, "event": "recording_started"}\n')
    files = [
        FileFact("video", "1-camera.mkv", 300, 5000, "sha256:aa", "Ann"),
        FileFact("timeline", "timeline.jsonl", 40),
    ]
    await store.finalised(
        env.db, recording_id, files, duration_ms=5000, ended_at=env.clock.now, retention_days=30, render=True,
        now=env.clock.now,
    )  # fmt: skip
    if ready:
        (folder / "composite.mp4").write_bytes(COMPOSITE)
        composite = FileFact("composite", "composite.mp4", len(COMPOSITE), 5000, "sha256:bb")
        await store.rendered(env.db, recording_id, composite, now=env.clock.now)
    env.ids[f"meeting_{key}"] = meeting.id
    return recording_id


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    clock = Clock()
    app = await create_app(settings, secret_key=SECRET_KEY, clock=clock)
    db = app[DATABASE]
    await db.upgrade()
    ids: dict[str, int] = {}
    async with db.session() as session:
        for key in ("a", "b"):
            account = Account(name=f"Account {key}", created_at=T0)
            session.add(account)
            await session.flush()
            room = Room(
                account_id=account.id, name=f"Room {key}", meeting_number=f"80000000{ord(key)}", capacity=5,
                created_at=T0,
            )  # fmt: skip
            session.add(room)
            await session.flush()
            ids[f"account_{key}"], ids[f"room_{key}"] = account.id, room.id
        await session.commit()
    # Users are rows with tokens minted for them: nobody logs in, so no password is hashed (argon2 is slow).
    users: dict[str, tuple[int, int, str]] = {}
    async with db.session() as session:
        for who, email, role, key in (("admin_a", "admin@a.example", "admin", "a"),
                                      ("org_a", "org@a.example", "organizer", "a"),
                                      ("admin_b", "admin@b.example", "admin", "b")):  # fmt: skip
            user = User(
                account_id=ids[f"account_{key}"], email=email, password_hash="-", role=role, created_at=T0
            )
            session.add(user)
            await session.flush()
            users[who] = (user.id, ids[f"account_{key}"], role)
        await session.commit()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as http:
            state = Env(f"http://{host}:{port}", app, db, clock, http, app[RECORDINGS].root, ids)
            for who, (user_id, account_id, role) in users.items():
                state.tokens[who], _ = mint_access_token(
                    SECRET_KEY,
                    user_id=user_id,
                    account_id=account_id,
                    role=role,
                    now=T0,
                    ttl=timedelta(days=400),
                )
            yield state
    finally:
        await runner.cleanup()


async def test_list_detail_per_meeting_and_account_isolation(env: Env) -> None:
    mine = await _seed_recording(env, "a")
    theirs = await _seed_recording(env, "b")
    status, rows = await env.call("GET", "/recordings")
    assert status == 200 and [r["id"] for r in rows] == [mine]
    row = rows[0]
    assert (row["state"], row["progress"], row["composite"], row["size_bytes"]) == (
        "ready",
        100,
        True,
        340 + len(COMPOSITE),
    )
    assert [f["kind"] for f in row["files"]] == ["video", "timeline", "composite"]
    assert row["retain_until"] == (T0 + timedelta(days=30)).isoformat().replace("+00:00", "Z")
    status, rows = await env.call("GET", f"/meetings/{env.ids['meeting_a']}/recordings", "org_a")
    assert status == 200 and [r["id"] for r in rows] == [mine]
    for path in (f"/recordings/{theirs}", f"/meetings/{env.ids['meeting_b']}/recordings"):
        status, body = await env.call("GET", path)
        assert status == 404 and body["error"]["code"] == "not_found", path
    foreign: list[tuple[str, str, Any]] = [
        ("POST", f"/recordings/{theirs}/links", {}),
        ("DELETE", f"/recordings/{theirs}", None),
        ("PATCH", f"/recordings/{theirs}", {"retain_until": None}),
        ("POST", f"/recordings/{theirs}/retry", {}),
        ("POST", f"/meetings/{env.ids['meeting_b']}/recording", {"action": "start"}),
    ]
    for method, path, body in foreign:
        status, answer = await env.call(method, path, json=body)
        assert status == 404, (method, path, answer)
    status, rows = await env.call("GET", f"/recordings?meeting_id={env.ids['meeting_b']}")
    assert status == 200 and rows == []


async def _link(env: Env, recording_id: int, who: str = "admin_a", **body: Any) -> tuple[int, Any]:
    return await env.call("POST", f"/recordings/{recording_id}/links", who, json=body)


async def test_signed_links_work_without_a_session_and_only_as_signed(env: Env) -> None:
    mine = await _seed_recording(env, "a")
    theirs = await _seed_recording(env, "b")
    status, link = await _link(env, mine, "org_a")
    assert status == 201, link
    url = f"{env.url}/api/v1/{link['url']}"
    async with env.http.get(url) as resp:  # no Authorization, no cookie
        assert resp.status == 200 and await resp.read() == COMPOSITE
        assert resp.headers["Content-Type"] == "video/mp4"
    async with env.http.get(url, headers={"Range": "bytes=10-19"}) as resp:
        assert resp.status == 206 and await resp.read() == COMPOSITE[10:20]  # <video> seeks with ranges

    token = link["url"].split("token=", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    payload = jwt.decode(token, options={"verify_signature": False})
    forged_elsewhere = jwt.encode(
        {**payload, "rec": theirs}, "another-server-key-0123456789abcdef", algorithm="HS256"
    )
    # Signed with this server's key but naming B's recording under A's account, or a path.
    wrong_account = jwt.encode({**payload, "rec": theirs}, SECRET_KEY, algorithm="HS256")
    traversal = jwt.encode({**payload, "file": "../../secret_key"}, SECRET_KEY, algorithm="HS256")
    other_file = jwt.encode({**payload, "file": "yunhui.db"}, SECRET_KEY, algorithm="HS256")
    refused = [
        (tampered, "invalid_link"),
        (forged_elsewhere, "invalid_link"),
        (wrong_account, "not_found"),
        (traversal, "invalid_link"),
        (other_file, "not_found"),
        ("x", "invalid_link"),
    ]
    for bad, code in refused:
        status, body = await env.call("GET", f"/recordings/download?token={bad}", None)
        assert status == 404 and body["error"]["code"] == code, (bad, body)

    status, body = await _link(env, mine, "admin_b")
    assert status == 404
    status, body = await _link(env, mine, file_id=10**6)
    assert status == 404 and body["error"]["field"] == "file_id"
    status, file_link = await _link(
        env,
        mine,
        file_id=next(
            f["id"]
            for f in (await env.call("GET", f"/recordings/{mine}"))[1]["files"]
            if f["kind"] == "video"
        ),
    )
    assert status == 201
    async with env.http.get(f"{env.url}/api/v1/{file_link['url']}") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "video/x-matroska"

    env.clock.now = T0 + timedelta(seconds=env.recordings.settings.download_link_ttl_seconds)
    status, body = await env.call("GET", f"/recordings/download?token={token}", None)
    assert status == 404 and body["error"]["code"] == "link_expired"


async def test_bad_input_is_a_4xx_with_a_message(env: Env) -> None:
    mine = await _seed_recording(env, "a")
    rendering = await _seed_recording(env, "a", ready=False)
    cases: list[tuple[str, str, str | None, Any, int, str]] = [
        ("POST", f"/recordings/{mine}/links", "admin_a", {"file_id": "x"}, 422, "file_id"),
        ("POST", f"/recordings/{mine}/links", "admin_a", {"file": 1}, 422, "file"),
        ("POST", f"/recordings/{rendering}/links", "admin_a", {}, 409, "file_id"),
        (
            "PATCH",
            f"/recordings/{mine}",
            "admin_a",
            {"retain_until": "2020-01-01T00:00:00Z"},
            422,
            "retain_until",
        ),
        (
            "PATCH",
            f"/recordings/{mine}",
            "admin_a",
            {"retain_until": "2030-01-01T00:00:00"},
            422,
            "retain_until",
        ),
        ("PATCH", f"/recordings/{mine}", "admin_a", {"retain_until": "soon"}, 422, "retain_until"),
        ("PATCH", f"/recordings/{mine}", "org_a", {"retain_until": None}, 403, ""),
        (
            "POST",
            f"/meetings/{env.ids['meeting_a']}/recording",
            "admin_a",
            {"action": "pause"},
            422,
            "action",
        ),
        ("POST", f"/meetings/{env.ids['meeting_a']}/recording", "admin_a", {"action": "start"}, 409, ""),
        ("POST", f"/recordings/{mine}/retry", "admin_a", {}, 409, "state"),
        ("DELETE", f"/recordings/{rendering}", "admin_a", None, 409, "state"),
        ("GET", "/recordings?state=lost", "admin_a", None, 422, "state"),
        ("GET", "/recordings/download", None, None, 422, "token"),
        ("GET", "/recordings/0", "admin_a", None, 404, "recording_id"),
    ]
    for method, path, who, body, expected, field_name in cases:
        status, answer = await env.call(method, path, who, json=body)
        assert status == expected, (method, path, body, answer)
        assert answer["error"]["message"], answer
        if field_name:
            assert answer["error"]["field"] == field_name, (path, answer)
    status, answer = await env.call(
        "PATCH", f"/recordings/{mine}", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and answer["error"]["code"] == "malformed_json"


async def test_delete_removes_the_files_and_the_links(env: Env) -> None:
    mine = await _seed_recording(env, "a")
    _, link = await _link(env, mine)
    status, _ = await env.call("DELETE", f"/recordings/{mine}", "org_a")
    assert status == 403
    status, _ = await env.call("DELETE", f"/recordings/{mine}")
    assert status == 204
    status, row = await env.call("GET", f"/recordings/{mine}")
    assert (row["state"], row["composite"], row["deleted_at"] is not None) == ("deleted", False, True)
    assert not (env.root / f"{env.ids['meeting_a']}-seeded-a").exists()
    status, body = await env.call("GET", f"/{link['url']}", None)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _ = await env.call("DELETE", f"/recordings/{mine}")
    assert status == 204  # idempotent
    status, _ = await _link(env, mine)
    assert status == 409


async def test_retention_purge_under_an_injected_clock(env: Env) -> None:
    kept = await _seed_recording(env, "a")
    expiring = await _seed_recording(env, "b")
    status, _ = await env.call("PATCH", f"/recordings/{kept}", json={"retain_until": "2026-12-31T00:00:00Z"})
    assert status == 200
    assert await env.recordings.purge() == 0
    env.clock.now = T0 + timedelta(days=30)  # retain_until of the seeded recordings
    assert await env.recordings.purge() == 1
    async with env.db.session() as session:
        states = {r.id: r.state for r in (await session.execute(select(Recording.id, Recording.state))).all()}
    assert states == {kept: "ready", expiring: "deleted"}
    assert not (env.root / f"{env.ids['meeting_b']}-seeded-b").exists()
    assert (env.root / f"{env.ids['meeting_a']}-seeded-a" / "composite.mp4").exists()
    # A crash between the commit and the removal left a directory behind: the next run removes it.
    leftover = env.root / f"{env.ids['meeting_b']}-seeded-b"
    leftover.mkdir()
    (leftover / "x.mkv").write_bytes(b"x")
    assert await env.recordings.purge() == 0
    assert not leftover.exists()
    env.clock.now = datetime(2027, 1, 1, tzinfo=UTC)
    assert await env.recordings.purge() == 1


async def _wait_state(env: Env, recording_id: int, states: set[str]) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            status, row = await env.call("GET", f"/recordings/{recording_id}")
            assert status == 200
            if row["state"] in states:
                return dict(row)
            await asyncio.sleep(0.05)  # polls the API (a bounded wait on another task's outcome)


async def test_a_failed_render_says_why_and_can_be_retried(env: Env) -> None:
    broken = await _seed_recording(env, "a", ready=False)  # its timeline has no recording_stopped
    env.recordings.render_later(broken)
    row = await _wait_state(env, broken, {"failed"})
    assert row["error"].startswith("the composite could not be rendered: ") and "not finished" in row["error"]
    status, row = await env.call("POST", f"/recordings/{broken}/retry", "org_a", json={})
    assert status == 202 and row["state"] in ("rendering", "failed")
    row = await _wait_state(env, broken, {"failed"})
    assert row["progress"] == 0


async def test_start_and_stop_over_rest_in_a_live_meeting(env: Env) -> None:
    room_id = env.ids["room_a"]
    token, _ = mint_join_token(
        SECRET_KEY, room_id=room_id, meeting_number=f"80000000{ord('a')}", account_id=env.ids["account_a"],
        role="host", display_name="Ann", now=env.clock.now, ttl=timedelta(hours=1),
    )  # fmt: skip
    host = SocketClient()
    await host.connect(env.url, {"token": token})
    try:
        joined = await host.expect("joined")
        meeting_id = int(joined["meeting"]["meeting_id"])
        status, body = await env.call(
            "POST", f"/meetings/{meeting_id}/recording", "org_a", json={"action": "start"}
        )
        assert status == 204, body
        assert (await host.expect("meeting_changed"))["meeting"]["recording"] is True
        status, body = await env.call("POST", f"/meetings/{meeting_id}/recording", json={"action": "start"})
        assert status == 409 and body["error"]["code"] == "bad_state"
        status, rows = await env.call("GET", f"/meetings/{meeting_id}/recordings")
        assert [(r["state"], r["started_by"]) for r in rows] == [("recording", "org@a.example")]
        status, body = await env.call("POST", f"/meetings/{meeting_id}/recording", json={"action": "stop"})
        assert status == 204, body
        assert (await host.expect("meeting_changed"))["meeting"]["recording"] is False
        # Nobody published: the timeline alone is finalised; the composite is the meeting's length in black.
        row = await _wait_state(env, rows[0]["id"], {"failed", "ready"})
        assert (row["state"], row["progress"], row["composite"]) == ("ready", 100, True), row
        assert sorted(f["kind"] for f in row["files"]) == ["composite", "timeline"]
        async with env.db.session() as session:
            kinds = (
                await session.scalars(select(Attendance.kind).where(Attendance.meeting_id == meeting_id))
            ).all()
        assert sorted(kinds) == ["browser", "recorder"]
        status, body = await env.call("POST", f"/meetings/{meeting_id}/recording", json={"action": "stop"})
        assert status == 409 and body["error"]["code"] == "bad_state"
    finally:
        await host.close()


async def test_a_room_is_set_to_record_automatically(env: Env) -> None:
    room_id = env.ids["room_a"]
    status, room = await env.call("GET", f"/rooms/{room_id}")
    assert status == 200 and room["auto_record"] is False
    status, room = await env.call("PATCH", f"/rooms/{room_id}", json={"auto_record": True})
    assert status == 200 and room["auto_record"] is True
    status, body = await env.call("PATCH", f"/rooms/{room_id}", json={"auto_record": "sometimes"})
    assert status == 422 and body["error"]["field"] == "auto_record"
    status, room = await env.call("POST", "/rooms", json={"name": "Auto", "auto_record": True})
    assert status == 201 and room["auto_record"] is True
